using System.Net;
using System.Text;
using BenchmarkDotNet.Attributes;
using Peerway.Nat.Stun;

namespace Peerway.Benchmarks;

/// <summary>The STUN codec's hot paths: decoding a request, answering a Binding, checking MESSAGE-INTEGRITY.</summary>
[MemoryDiagnoser]
public class StunBenchmarks
{
    // RFC 5769 §2.1 sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT).
    private static readonly byte[] SampleRequest = Convert.FromHexString(
        "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74" +
        "002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020" +
        "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf");

    private static readonly byte[] Key = Encoding.UTF8.GetBytes("VOkJxbRl1RmTxUk/WvJxBt");
    private readonly byte[] _response = new byte[StunServer.MaxResponseSize];
    private readonly IPEndPoint _client = new(IPAddress.Parse("192.0.2.1"), 32853);
    private byte[] _binding = [];
    private StunServer _server = null!;
    private StunMessage _decoded = null!;

    [GlobalSetup]
    public void Setup()
    {
        _binding = new byte[28];
        var w = new StunWriter(_binding, StunMethod.Binding, StunClass.Request, SampleRequest.AsSpan(8, 12));
        w.AddFingerprint();
        _server = new StunServer([new NullSocket()], new StunServerOptions());
        StunMessage.TryDecode(SampleRequest, out var m, out _);
        _decoded = m!;
    }

    [Benchmark]
    public int DecodeSampleRequest() => StunMessage.TryDecode(SampleRequest, out var m, out _) ? m!.Attributes.Count : -1;

    [Benchmark]
    public bool VerifyIntegrityAndFingerprint() => StunAttributes.VerifyIntegrity(_decoded, Key) && StunAttributes.VerifyFingerprint(_decoded);

    [Benchmark]
    public int EncodeBindingResponse()
    {
        var w = new StunWriter(_response, StunMethod.Binding, StunClass.SuccessResponse, SampleRequest.AsSpan(8, 12));
        w.AddXorAddress(StunAttributeType.XorMappedAddress, _client);
        w.AddUtf8(StunAttributeType.Software, "Peerway");
        w.AddFingerprint();
        return w.Length;
    }

    [Benchmark]
    public int ServerAnswersBinding() => _server.Respond(_binding, _client, 0, allowChange: true, _response, out _, out _);

    private sealed class NullSocket : Peerway.Net.IDatagramSocket
    {
        public IPEndPoint LocalEndPoint { get; } = new(IPAddress.Parse("192.0.2.2"), 3478);

        public void Start(Peerway.Net.DatagramHandler handler)
        {
        }

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
        }

        public void Dispose()
        {
        }
    }
}
