using System.Buffers.Binary;
using System.Net;
using FsCheck.Xunit;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core;
using Peerway.Core.Bencoding;
using Peerway.Net;
using Peerway.Node;
using Peerway.Torrent.Trackers;

namespace Peerway.Node.Tests;

public sealed class TrackerTests
{
    private static AnnounceRequest Req(NodeId hash, int port, long left = 100, AnnounceEvent ev = AnnounceEvent.Started) =>
        new(hash, NodeId.Random(), port, 0, 0, left, ev);

    [Fact]
    public void Http_response_parses_compact_and_dictionary_peers_and_failures()
    {
        var compact = "d8:completei1e10:incompletei2e8:intervali900e5:peers12:"u8.ToArray()
            .Concat(new byte[] { 127, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0, 80 }).Concat("e"u8.ToArray()).ToArray();
        Assert.True(HttpTrackerCodec.TryParseResponse(compact, out var r, out _, out _));
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 6881), new IPEndPoint(IPAddress.Parse("10.0.0.2"), 80)], r!.Peers);
        Assert.Equal(TimeSpan.FromSeconds(900), r.Interval);
        Assert.Equal((1, 2), (r.Seeders, r.Leechers));
        Assert.True(HttpTrackerCodec.TryParseResponse("d8:intervali60e5:peersld2:ip9:127.0.0.14:porti6881eeee"u8, out var dict, out _, out _));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 6881), Assert.Single(dict!.Peers));
        Assert.False(HttpTrackerCodec.TryParseResponse("d14:failure reason4:nopee"u8, out _, out var e, out var why));
        Assert.Equal((TrackerError.Failure, "nope"), (e, why));
        Assert.False(HttpTrackerCodec.TryParseResponse("d5:peers5:abcdee"u8, out _, out e, out _));
        Assert.Equal(TrackerError.Malformed, e);
    }

    [Fact]
    public void Announce_url_escapes_binary_values()
    {
        var hash = new NodeId(Enumerable.Range(0, 20).Select(i => (byte)(i * 13)).ToArray());
        var uri = HttpTrackerCodec.AnnounceUri(new Uri("http://127.0.0.1:6969/announce"), Req(hash, 6881));
        var query = TrackerServer.ParseQuery(uri.Query.TrimStart('?'));
        Assert.Equal(hash.ToArray(), query["info_hash"][0]);
        Assert.Equal("1"u8.ToArray(), query["compact"][0]);
        Assert.Equal("started"u8.ToArray(), query["event"][0]);
    }

    [Fact]
    public void Udp_announce_round_trips()
    {
        var r = Req(NodeId.Random(), 51413, 12345, AnnounceEvent.Completed);
        var bytes = new byte[UdpTrackerCodec.AnnounceRequestLength];
        UdpTrackerCodec.WriteAnnounce(bytes, 0x1122334455667788, 42, r, 7);
        Assert.True(UdpTrackerCodec.TryReadAnnounceRequest(bytes, out var cid, out var tid, out var back));
        Assert.Equal((0x1122334455667788L, 42), (cid, tid));
        Assert.Equal(r with { NumWant = back!.NumWant }, back);
    }

    [Fact]
    public async Task Http_tracker_server_and_client_exchange_peers_and_scrape()
    {
        await using var server = new TrackerServer(new TrackerServerOptions { ListenAddress = IPAddress.Loopback, Port = 0 }, TimeProvider.System);
        server.Start();
        using var http = new HttpClient();
        var client = new HttpTrackerClient(http);
        var announce = new Uri($"http://127.0.0.1:{server.Port}/announce");
        var hash = NodeId.Random();
        var first = await client.AnnounceAsync(announce, Req(hash, 1111, left: 0), CancellationToken.None);
        Assert.True(first.Ok, first.Message);
        Assert.Empty(first.Response!.Peers);
        var second = await client.AnnounceAsync(announce, Req(hash, 2222), CancellationToken.None);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 1111), Assert.Single(second.Response!.Peers));
        Assert.Equal((1, 1), (second.Response.Seeders, second.Response.Leechers));
        var scrape = await http.GetByteArrayAsync($"http://127.0.0.1:{server.Port}/scrape?info_hash={HttpTrackerCodec.Escape(hash.ToArray())}");
        var files = (BDictionary)((BDictionary)Bencode.Decode(scrape))["files"]!;
        Assert.True(files.TryGet(hash.ToArray(), out var entry));
        Assert.Equal(new BInteger(1), ((BDictionary)entry!)["complete"]);
        var bad = await client.AnnounceAsync(new Uri($"http://127.0.0.1:{server.Port}/announce?info_hash=short"), Req(hash, 1), CancellationToken.None);
        Assert.False(bad.Ok);
    }

    [Fact]
    public async Task Scrape_does_not_count_peers_that_expired()
    {
        var time = new FakeTimeProvider();
        var options = new TrackerServerOptions { ListenAddress = IPAddress.Loopback, Port = 0, Interval = TimeSpan.FromSeconds(10) };
        await using var server = new TrackerServer(options, time);
        server.Start();
        var hash = NodeId.Random();
        server.Announce(Req(hash, 1111, left: 0), IPAddress.Loopback);
        server.Announce(Req(hash, 2222, left: 5), IPAddress.Loopback);
        using var http = new HttpClient();
        async Task<(BValue Complete, BValue Incomplete)> ScrapeAsync()
        {
            var body = await http.GetByteArrayAsync($"http://127.0.0.1:{server.Port}/scrape?info_hash={HttpTrackerCodec.Escape(hash.ToArray())}");
            var files = (BDictionary)((BDictionary)Bencode.Decode(body))["files"]!;
            Assert.True(files.TryGet(hash.ToArray(), out var entry));
            return (((BDictionary)entry!)["complete"]!, ((BDictionary)entry!)["incomplete"]!);
        }

        Assert.Equal((new BInteger(1), new BInteger(1)), await ScrapeAsync());
        time.Advance(TimeSpan.FromSeconds(15));
        server.Announce(Req(hash, 2222, left: 5), IPAddress.Loopback);
        time.Advance(TimeSpan.FromSeconds(6)); // the seed: 21 s > 2 intervals without an announce; the leecher: 6 s
        Assert.Equal((new BInteger(0), new BInteger(1)), await ScrapeAsync());
    }

    [Fact]
    public async Task Udp_tracker_client_announces_to_the_udp_tracker()
    {
        await using var server = new TrackerServer(new TrackerServerOptions { ListenAddress = IPAddress.Loopback, Port = 0 }, TimeProvider.System);
        var serverUdp = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
        server.Start(serverUdp);
        using var clientSocket = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
        using var client = new UdpTrackerClient(clientSocket, TimeProvider.System, new UdpTrackerOptions { InitialTimeout = TimeSpan.FromSeconds(5) });
        var hash = NodeId.Random();
        var a = await client.AnnounceAsync(serverUdp.LocalEndPoint, Req(hash, 3333, left: 0), CancellationToken.None);
        Assert.True(a.Ok, a.Error.ToString());
        var b = await client.AnnounceAsync(serverUdp.LocalEndPoint, Req(hash, 4444), CancellationToken.None);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 3333), Assert.Single(b.Response!.Peers));
        Assert.Equal((1, 1), (b.Response.Seeders, b.Response.Leechers));
    }

    private sealed class RecordingSocket : IDatagramSocket
    {
        public List<byte[]> Sent { get; } = [];
        public DatagramHandler? Handler { get; private set; }
        public IPEndPoint LocalEndPoint { get; } = new(IPAddress.Loopback, 1);
        public void Start(DatagramHandler handler) => Handler = handler;
        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            lock (Sent) Sent.Add(datagram.ToArray());
        }

        public void Dispose()
        {
        }
    }

    [Fact]
    public async Task Udp_client_retransmits_with_backoff_then_gives_up()
    {
        var time = new FakeTimeProvider();
        var socket = new RecordingSocket();
        using var client = new UdpTrackerClient(socket, time, new UdpTrackerOptions { InitialTimeout = TimeSpan.FromSeconds(15), MaxRetries = 2 });
        var task = client.AnnounceAsync(new IPEndPoint(IPAddress.Loopback, 9), Req(NodeId.Random(), 1), CancellationToken.None);
        Assert.Single(socket.Sent);
        time.Advance(TimeSpan.FromSeconds(14));
        Assert.Single(socket.Sent);
        time.Advance(TimeSpan.FromSeconds(1));
        await WaitForAsync(() => socket.Sent.Count == 2);
        time.Advance(TimeSpan.FromSeconds(30)); // BEP 15: 15 · 2^1
        await WaitForAsync(() => socket.Sent.Count == 3);
        // Answer the third connect: the client then sends the announce.
        var connect = socket.Sent[2];
        var reply = new byte[16];
        connect.AsSpan(12, 4).CopyTo(reply.AsSpan(4));
        BinaryPrimitives.WriteInt64BigEndian(reply.AsSpan(8), 99);
        socket.Handler!(reply, new IPEndPoint(IPAddress.Loopback, 9));
        await WaitForAsync(() => socket.Sent.Count == 4);
        Assert.Equal(99, BinaryPrimitives.ReadInt64BigEndian(socket.Sent[3]));
        time.Advance(TimeSpan.FromSeconds(15));
        await WaitForAsync(() => socket.Sent.Count == 5);
        time.Advance(TimeSpan.FromSeconds(30));
        await WaitForAsync(() => socket.Sent.Count == 6);
        time.Advance(TimeSpan.FromSeconds(60));
        var result = await task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(TrackerError.Timeout, result.Error);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        // The client's continuation runs on the thread pool after a fake-time advance; poll with a deadline.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached");
            await Task.Yield();
        }
    }

    [Property(MaxTest = 1000)]
    public bool Tracker_decoders_never_throw(byte[] data)
    {
        data ??= [];
        _ = HttpTrackerCodec.TryParseResponse(data, out _, out _, out _);
        UdpTrackerCodec.TryReadAnnounceResponse(data, out _);
        UdpTrackerCodec.TryReadAnnounceRequest(data, out _, out _, out _);
        UdpTrackerCodec.TryReadConnectResponse(data, out _);
        TrackerServer.ParseQuery(System.Text.Encoding.Latin1.GetString(data));
        return true;
    }
}
