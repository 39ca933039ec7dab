using System.Buffers;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Peerway.Torrent.Encryption;

namespace Peerway.Benchmarks;

/// <summary>MSE/PE: the RC4 transform every byte of an encrypted connection goes through, and a whole handshake.</summary>
[MemoryDiagnoser]
public class MseBenchmarks
{
    private readonly byte[] _block = RandomNumberGenerator.GetBytes(16 * 1024);
    private readonly byte[] _segment = RandomNumberGenerator.GetBytes(256 * 1024);
    private readonly Rc4 _rc4 = Rc4.ForMse(RandomNumberGenerator.GetBytes(20));
    private readonly byte[] _infoHash = RandomNumberGenerator.GetBytes(20);

    /// <summary>One 16 KiB block in place (bytes/s = 16 KiB / mean).</summary>
    [Benchmark]
    public void Rc4Block16KiB() => _rc4.Transform(_block);

    /// <summary>One 256 KiB pipe read or pump batch in place.</summary>
    [Benchmark]
    public void Rc4Segment256KiB() => _rc4.Transform(_segment);

    /// <summary>Both sides of a handshake in memory: two 768-bit DH key pairs and secrets, hashes, RC4 set-up.</summary>
    [Benchmark]
    public int HandshakeBothSides()
    {
        var a = MseHandshake.CreateInitiator(_infoHash, CryptoMethods.Rc4);
        var b = MseHandshake.CreateResponder([_infoHash], CryptoMethods.Rc4 | CryptoMethods.Plaintext, preferRc4: false);
        var toB = new ArrayBufferWriter<byte>();
        var toA = new ArrayBufferWriter<byte>();
        a.Start(toB);
        b.Start(toA);
        b.Advance(toB.WrittenSpan, toA, out var usedB);
        a.Advance(toA.WrittenSpan, toB, out _);
        var step3 = toB.WrittenSpan[usedB..].ToArray();
        return b.Advance(step3, toA, out _) == MseStatus.Done ? toA.WrittenCount : throw new InvalidOperationException("handshake did not complete");
    }
}
