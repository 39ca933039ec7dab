using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Stun;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Nat.Tests.Stun;

/// <summary>Records what is sent; delivers what the test injects.</summary>
internal sealed class RecordingSocket(IPEndPoint local, TimeProvider time) : IDatagramSocket
{
    public List<(DateTimeOffset At, byte[] Data, IPEndPoint To)> Sent { get; } = [];

    public DatagramHandler? Handler { get; private set; }

    public IPEndPoint LocalEndPoint { get; } = local;

    public bool Disposed { get; private set; }

    public void Start(DatagramHandler handler) => Handler = handler;

    public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        lock (Sent) Sent.Add((time.GetUtcNow(), datagram.ToArray(), remote));
    }

    public void Dispose() => Disposed = true;
}

public sealed class StunServerClientTests
{
    private static readonly IPEndPoint Client = new(IPAddress.Parse("198.51.100.7"), 40000);

    private static byte[] BindingRequest(Action<StunWriterHolder>? extra = null, bool fingerprint = true)
    {
        var buffer = new byte[256];
        var holder = new StunWriterHolder(buffer);
        extra?.Invoke(holder);
        return holder.Finish(fingerprint);
    }

    internal sealed class StunWriterHolder(byte[] buffer)
    {
        private readonly List<(ushort Type, byte[] Value)> _attributes = [];

        public byte[] Tid { get; } = StunClient.NewTransactionId();

        public void Add(ushort type, byte[] value) => _attributes.Add((type, value));

        public byte[] Finish(bool fingerprint)
        {
            var w = new StunWriter(buffer, StunMethod.Binding, StunClass.Request, Tid);
            foreach (var (t, v) in _attributes) w.Add(t, v);
            if (fingerprint) w.AddFingerprint();
            return w.Written.ToArray();
        }
    }

    private static (StunServer Server, RecordingSocket[] Sockets) NewServer(int count)
    {
        var time = new FakeTimeProvider();
        var sockets = Enumerable.Range(0, count).Select(i => new RecordingSocket(
            new IPEndPoint(IPAddress.Parse(i < 2 ? "192.0.2.1" : "192.0.2.2"), (i & 1) == 0 ? 3478 : 3479), time)).ToArray();
        var server = new StunServer(sockets, new StunServerOptions());
        server.Start();
        return (server, sockets);
    }

    private static StunMessage Only(RecordingSocket socket)
    {
        Assert.Single(socket.Sent);
        Assert.True(StunMessage.TryDecode(socket.Sent[0].Data, out var m, out _));
        return m!;
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(1, false)]
    [InlineData(4, true)]
    public void Binding_is_answered_without_allocating(int sockets, bool fingerprint)
    {
        // The server's hot path: a plain Binding request (RFC 8489 §8), with RFC 5780 attributes when it has 4 sockets.
        var server = new StunServer(Enumerable.Range(0, sockets).Select(i => (IDatagramSocket)new RecordingSocket(
            new IPEndPoint(IPAddress.Parse(i < 2 ? "192.0.2.1" : "192.0.2.2"), (i & 1) == 0 ? 3478 : 3479), TimeProvider.System)).ToList(), new StunServerOptions());
        var request = BindingRequest(fingerprint: fingerprint);
        var response = new byte[StunServer.MaxResponseSize];
        var written = server.Respond(request, Client, 0, allowChange: true, response, out _, out _); // warm up
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++) written = server.Respond(request, Client, 0, allowChange: true, response, out _, out _);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(StunMessage.TryDecode(response.AsSpan(0, written), out var m, out _));
        Assert.Equal(StunClass.SuccessResponse, m!.Class);
        Assert.Equal(101, server.Answered);
    }

    [Fact]
    public void Binding_response_carries_the_source_address_software_and_fingerprint()
    {
        var (_, sockets) = NewServer(1);
        var request = BindingRequest();
        sockets[0].Handler!(request, Client);
        var m = Only(sockets[0]);
        Assert.Equal(StunClass.SuccessResponse, m.Class);
        Assert.Equal(request.AsSpan(8, 12).ToArray(), m.TransactionId.ToArray());
        Assert.True(m.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped));
        Assert.Equal(Client, mapped);
        Assert.True(StunAttributes.VerifyFingerprint(m));
        Assert.False(m.Has(StunAttributeType.OtherAddress));
        Assert.Equal(Client, sockets[0].Sent[0].To);
    }

    [Theory]
    [InlineData(0, 0u, 0)]
    [InlineData(0, 0x06u, 3)]
    [InlineData(0, 0x02u, 1)]
    [InlineData(0, 0x04u, 2)]
    [InlineData(3, 0x06u, 0)]
    [InlineData(2, 0x02u, 3)]
    public void Change_request_moves_the_response_to_the_right_socket(int receivedOn, uint flags, int expectedFrom)
    {
        var (_, sockets) = NewServer(4);
        var request = BindingRequest(h => h.Add(StunAttributeType.ChangeRequest, [0, 0, 0, (byte)flags]));
        sockets[receivedOn].Handler!(request, Client);
        for (var i = 0; i < 4; i++) Assert.Equal(i == expectedFrom ? 1 : 0, sockets[i].Sent.Count);
        var m = Only(sockets[expectedFrom]);
        Assert.True(m.TryGetAddress(StunAttributeType.ResponseOrigin, out var origin));
        Assert.Equal(sockets[expectedFrom].LocalEndPoint, origin);
        Assert.True(m.TryGetAddress(StunAttributeType.OtherAddress, out var other));
        Assert.Equal(sockets[receivedOn ^ 3].LocalEndPoint, other);
        Assert.True(m.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped));
        Assert.Equal(Client, mapped);
    }

    [Fact]
    public void Change_request_without_an_alternate_address_is_420()
    {
        var (_, sockets) = NewServer(1);
        sockets[0].Handler!(BindingRequest(h => h.Add(StunAttributeType.ChangeRequest, [0, 0, 0, 6])), Client);
        var m = Only(sockets[0]);
        Assert.True(m.TryGetErrorCode(out var code, out _));
        Assert.Equal(420, code);
    }

    [Fact]
    public void Unknown_comprehension_required_attribute_is_420_with_unknown_attributes()
    {
        var (server, sockets) = NewServer(1);
        sockets[0].Handler!(BindingRequest(h => { h.Add(0x7ABC, [1, 2, 3, 4]); h.Add(0xC123, [1]); }), Client);
        var m = Only(sockets[0]);
        Assert.Equal(StunClass.ErrorResponse, m.Class);
        Assert.True(m.TryGetErrorCode(out var code, out _));
        Assert.Equal(420, code);
        Assert.True(m.TryGet(StunAttributeType.UnknownAttributes, out var ua));
        Assert.True(StunAttributes.TryReadUnknownAttributes(m.GetValue(ua), out var types));
        Assert.Equal(new ushort[] { 0x7ABC }, types);
        Assert.Equal(0, server.Answered);
    }

    [Fact]
    public void Bad_fingerprint_responses_and_garbage_are_dropped_silently()
    {
        var (server, sockets) = NewServer(1);
        var bad = BindingRequest();
        bad[^1] ^= 0xFF;
        sockets[0].Handler!(bad, Client);
        var response = BindingRequest();
        response[1] = 0x01;
        response[0] = 0x01; // a success response: not for a server
        sockets[0].Handler!(response, Client);
        sockets[0].Handler!("hello"u8, Client);
        Assert.Empty(sockets[0].Sent);
        Assert.Equal(3, server.Dropped);
    }

    [Fact]
    public async Task Client_retransmits_on_the_rfc_8489_schedule_and_fails_after_39_5_seconds()
    {
        var time = new FakeTimeProvider();
        var socket = new RecordingSocket(Client, time);
        var start = time.GetUtcNow();
        using var client = new StunClient(socket, time, new StunClientOptions());
        var task = client.BindingAsync(new IPEndPoint(IPAddress.Loopback, 3478));
        for (var i = 0; i < 394; i++) time.Advance(TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.False(task.IsCompleted);
        var times = socket.Sent.Select(s => (s.At - start).TotalMilliseconds).ToArray();
        Assert.Equal(new double[] { 0, 500, 1500, 3500, 7500, 15500, 31500 }, times);
        Assert.All(socket.Sent, s => Assert.Equal(socket.Sent[0].Data, s.Data));
        time.Advance(TimeSpan.FromMilliseconds(1));
        await Assert.ThrowsAsync<TimeoutException>(() => task);
        Assert.Equal(39_500, new StunClientOptions().TransactionTimeout.TotalMilliseconds);
    }

    [Fact]
    public async Task Client_matches_the_response_by_transaction_id_and_stops_retransmitting()
    {
        var time = new FakeTimeProvider();
        var socket = new RecordingSocket(Client, time);
        var others = new List<byte[]>();
        using var client = new StunClient(socket, time, new StunClientOptions(), (d, _) => others.Add(d.ToArray()));
        var server = new IPEndPoint(IPAddress.Loopback, 3478);
        var task = client.BindingAsync(server);
        time.Advance(TimeSpan.FromMilliseconds(600));
        Assert.Equal(2, socket.Sent.Count);

        // A response for another transaction goes to the unhandled handler; the right one completes the task.
        var (stun, serverSockets) = NewServer(1);
        serverSockets[0].Handler!(socket.Sent[0].Data, Client);
        var reply = serverSockets[0].Sent[0].Data;
        var stray = (byte[])reply.Clone();
        stray[10] ^= 1;
        socket.Handler!(stray, server);
        Assert.False(task.IsCompleted);
        Assert.Single(others);
        socket.Handler!(reply, server);
        var m = await task;
        Assert.True(m.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped));
        Assert.Equal(Client, mapped);
        time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(2, socket.Sent.Count);
        Assert.Equal(1, stun.Answered);
    }

    [Fact]
    public void Response_port_redirects_the_response_to_that_port_at_the_source_ip()
    {
        var (_, sockets) = NewServer(4);
        sockets[0].Handler!(BindingRequest(h => { h.Add(StunAttributeType.ResponsePort, [0x9C, 0x41, 0, 0]); h.Add(StunAttributeType.ChangeRequest, [0, 0, 0, 6]); }), Client);
        Assert.Single(sockets[3].Sent);
        Assert.Equal(new IPEndPoint(Client.Address, 0x9C41), sockets[3].Sent[0].To);
    }

    [Fact]
    public async Task Probe_over_a_virtual_network_without_nat_reports_no_nat()
    {
        var time = new FakeTimeProvider();
        var scheduler = new DeterministicScheduler(time);
        var net = new VirtualNetwork(scheduler);
        var sockets = new IDatagramSocket[]
        {
            net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.1"), 3478)),
            net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.1"), 3479)),
            net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.2"), 3478)),
            net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.2"), 3479)),
        };
        using var server = new StunServer(sockets, new StunServerOptions());
        server.Start();
        var report = await scheduler.RunAsync(() => NatBehaviorProbe.RunAsync(() => net.CreateSocket(), sockets[0].LocalEndPoint, time, new StunClientOptions()), TimeSpan.FromMinutes(5));
        Assert.Equal(NatBehavior.NoNat, report.Mapping);
        Assert.Equal(NatBehavior.NoNat, report.Filtering);
        Assert.Equal(sockets[3].LocalEndPoint, report.OtherAddress);
        Assert.Equal(report.LocalEndPoint, report.MappedEndPoint);
    }
}
