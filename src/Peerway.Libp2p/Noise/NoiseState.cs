using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;
using ChaCha20Poly1305 = System.Security.Cryptography.ChaCha20Poly1305;

namespace Peerway.Libp2p.Noise;

/// <summary>The Noise Protocol Framework's CipherState (noise spec §5.1) for ChaChaPoly: a key and a 64-bit nonce.</summary>
internal sealed class CipherState : IDisposable
{
    public const int TagLength = 16;

    private ChaCha20Poly1305? _aead;
    private ulong _nonce;

    public bool HasKey => _aead is not null;

    public void InitializeKey(ReadOnlySpan<byte> key)
    {
        _aead?.Dispose();
        _aead = new ChaCha20Poly1305(key);
        _nonce = 0;
    }

    /// <summary>noise §5.1 EncryptWithAd; the plaintext is returned unchanged while there is no key.</summary>
    public int EncryptWithAd(ReadOnlySpan<byte> ad, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        if (_aead is null)
        {
            plaintext.CopyTo(destination);
            return plaintext.Length;
        }

        Span<byte> nonce = stackalloc byte[12];
        NextNonce(nonce);
        _aead.Encrypt(nonce, plaintext, destination[..plaintext.Length], destination.Slice(plaintext.Length, TagLength), ad);
        return plaintext.Length + TagLength;
    }

    /// <summary>noise §5.1 DecryptWithAd; false when authentication fails (the session must then be dropped).</summary>
    public bool TryDecryptWithAd(ReadOnlySpan<byte> ad, ReadOnlySpan<byte> ciphertext, Span<byte> destination, out int written)
    {
        written = 0;
        if (_aead is null)
        {
            ciphertext.CopyTo(destination);
            written = ciphertext.Length;
            return true;
        }

        if (ciphertext.Length < TagLength) return false;
        Span<byte> nonce = stackalloc byte[12];
        NextNonce(nonce);
        var length = ciphertext.Length - TagLength;
        try
        {
            _aead.Decrypt(nonce, ciphertext[..length], ciphertext[length..], destination[..length], ad);
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }

        written = length;
        return true;
    }

    private void NextNonce(Span<byte> nonce)
    {
        // noise §5.1: the nonce may not wrap; §12.3 ChaChaPoly: 32 bits of zeros then the 64-bit counter little-endian.
        if (_nonce == ulong.MaxValue) throw new CryptographicException("Noise nonce exhausted");
        nonce[..4].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], _nonce++);
    }

    public void Dispose() => _aead?.Dispose();
}

/// <summary>noise §5.2 SymmetricState with SHA-256 and HKDF as §4.3 defines it (identical to RFC 5869 with empty info).</summary>
internal sealed class SymmetricState : IDisposable
{
    public const string ProtocolName = "Noise_XX_25519_ChaChaPoly_SHA256";

    private byte[] _ck;
    private byte[] _h;

    public SymmetricState()
    {
        // §5.2 InitializeSymmetric: a name of at most HASHLEN bytes is padded with zeros to HASHLEN (this one is 32).
        _h = new byte[32];
        Encoding.ASCII.GetBytes(ProtocolName, _h);
        _ck = (byte[])_h.Clone();
    }

    public CipherState Cipher { get; } = new();

    public ReadOnlySpan<byte> HandshakeHash => _h;

    public void MixHash(ReadOnlySpan<byte> data)
    {
        var buffer = new byte[_h.Length + data.Length];
        _h.CopyTo(buffer, 0);
        data.CopyTo(buffer.AsSpan(_h.Length));
        _h = SHA256.HashData(buffer);
    }

    /// <summary>§5.2 MixKey over a Diffie-Hellman result.</summary>
    public void MixKey(SharedSecret dh)
    {
        var output = KeyDerivationAlgorithm.HkdfSha256.DeriveBytes(dh, _ck, ReadOnlySpan<byte>.Empty, 64);
        _ck = output[..32];
        Cipher.InitializeKey(output.AsSpan(32, 32));
    }

    public byte[] EncryptAndHash(ReadOnlySpan<byte> plaintext)
    {
        var output = new byte[plaintext.Length + (Cipher.HasKey ? CipherState.TagLength : 0)];
        Cipher.EncryptWithAd(_h, plaintext, output);
        MixHash(output);
        return output;
    }

    public byte[]? DecryptAndHash(ReadOnlySpan<byte> ciphertext)
    {
        var output = new byte[ciphertext.Length];
        if (!Cipher.TryDecryptWithAd(_h, ciphertext, output, out var n)) return null;
        MixHash(ciphertext);
        return output[..n];
    }

    /// <summary>§5.2 Split: the initiator's sending cipher first.</summary>
    public (CipherState First, CipherState Second) Split()
    {
        var output = HKDF.DeriveKey(HashAlgorithmName.SHA256, ReadOnlySpan<byte>.Empty.ToArray(), 64, _ck, []);
        var first = new CipherState();
        first.InitializeKey(output.AsSpan(0, 32));
        var second = new CipherState();
        second.InitializeKey(output.AsSpan(32, 32));
        CryptographicOperations.ZeroMemory(output);
        return (first, second);
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_ck);
        Cipher.Dispose();
    }
}
