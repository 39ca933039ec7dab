using System.Security.Cryptography;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Operators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Pkcs;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;

namespace Peerway.WebRtc.Dtls;

/// <summary>
/// A node's DTLS identity: an ECDSA P-256 key and a self-signed X.509 certificate (RFC 8827 §6.5: WebRTC endpoints
/// authenticate by certificate fingerprint, so self-signed is the norm). Its SHA-256 fingerprint goes in
/// <c>a=fingerprint</c> (RFC 8122 §5).
/// </summary>
public sealed class DtlsCertificate
{
    private DtlsCertificate(AsymmetricKeyParameter privateKey, X509Certificate certificate)
    {
        PrivateKey = privateKey;
        Certificate = certificate;
        Der = certificate.GetEncoded();
        Fingerprint = SHA256.HashData(Der);
    }

    internal AsymmetricKeyParameter PrivateKey { get; }

    internal X509Certificate Certificate { get; }

    /// <summary>The certificate, DER-encoded.</summary>
    public byte[] Der { get; }

    /// <summary>SHA-256 of <see cref="Der"/> (RFC 8122 §5).</summary>
    public byte[] Fingerprint { get; }

    /// <summary>RFC 8122 §5: <c>sha-256 AB:CD:…</c>, upper-case hex pairs.</summary>
    public string FingerprintSdp => "sha-256 " + FormatFingerprint(Fingerprint);

    internal static string FormatFingerprint(byte[] hash) => string.Join(':', hash.Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>A fresh P-256 key and a certificate valid from yesterday for 30 days (as browsers make them).</summary>
    public static DtlsCertificate Generate(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        var random = new SecureRandom();
        var generator = new ECKeyPairGenerator();
        generator.Init(new ECKeyGenerationParameters(Org.BouncyCastle.Asn1.Sec.SecObjectIdentifiers.SecP256r1, random));
        var keys = generator.GenerateKeyPair();
        var now = time.GetUtcNow().UtcDateTime;
        var builder = new X509V3CertificateGenerator();
        var name = new X509Name("CN=peerway");
        builder.SetSerialNumber(new BigInteger(64, random));
        builder.SetIssuerDN(name);
        builder.SetSubjectDN(name);
        builder.SetNotBefore(now.AddDays(-1));
        builder.SetNotAfter(now.AddDays(30));
        builder.SetPublicKey(keys.Public);
        var certificate = builder.Generate(new Asn1SignatureFactory("SHA256WITHECDSA", keys.Private, random));
        return new DtlsCertificate(keys.Private, certificate);
    }

    /// <summary>Loads a certificate saved by <see cref="Save"/>, or makes and saves a new one (kept across restarts).</summary>
    public static DtlsCertificate LoadOrCreate(string directory, TimeProvider time)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var keyPath = Path.Combine(directory, "dtls.key");
        var certPath = Path.Combine(directory, "dtls.crt");
        if (File.Exists(keyPath) && File.Exists(certPath))
        {
            var key = PrivateKeyFactory.CreateKey(File.ReadAllBytes(keyPath));
            var cert = new X509CertificateParser().ReadCertificate(File.ReadAllBytes(certPath));
            if (cert.NotAfter > time.GetUtcNow().UtcDateTime.AddDays(1)) return new DtlsCertificate(key, cert);
        }

        var fresh = Generate(time);
        fresh.Save(directory);
        return fresh;
    }

    /// <summary>Writes the key (PKCS#8 DER) and certificate (DER) to <paramref name="directory"/>.</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllBytes(Path.Combine(directory, "dtls.key"), PrivateKeyInfoFactory.CreatePrivateKeyInfo(PrivateKey).GetEncoded());
        File.WriteAllBytes(Path.Combine(directory, "dtls.crt"), Der);
    }
}
