using Peerway.WebRtc.Dtls;

namespace Peerway.WebRtc.Tests;

public sealed class DtlsCertificateTests
{
    [Fact]
    public void A_certificate_is_kept_across_restarts_in_the_state_directory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "peerway-dtls-" + Guid.NewGuid().ToString("N"));
        try
        {
            var first = DtlsCertificate.LoadOrCreate(dir, TimeProvider.System);
            var again = DtlsCertificate.LoadOrCreate(dir, TimeProvider.System);
            Assert.Equal(first.Fingerprint, again.Fingerprint);
            Assert.StartsWith("sha-256 ", first.FingerprintSdp, StringComparison.Ordinal);
            Assert.Equal(32 * 3 - 1, first.FingerprintSdp.Length - "sha-256 ".Length);

            // A fresh one elsewhere differs.
            Assert.NotEqual(first.Fingerprint, DtlsCertificate.Generate(TimeProvider.System).Fingerprint);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
