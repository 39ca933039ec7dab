using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// BEP 55, the relay's side, over the wire: a seeding session over loopback TCP and raw peers (each from its own
/// loopback address) that send <c>rendezvous</c> messages. The relay answers <c>connect</c> to both ends, or one of the
/// error codes (1 NoSuchPeer, 2 NotConnected, 3 NoSupport, 4 NoSelf) to the initiator alone.
/// </summary>
public sealed class HolepunchRelayTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    /// <summary>The id our raw peers give ut_holepunch in their "m" (any id of theirs, not the session's).</summary>
    private const byte TheirHolepunchId = 7;
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-holepunch-relay-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];
    private readonly FakeTimeProvider _time = new();
    private TorrentMetainfo _meta = null!;
    private TorrentSession _relay = null!;
    private IPEndPoint _relayAt = null!;

    public async Task InitializeAsync()
    {
        var source = Path.Combine(_dir, "seed", "payload.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(source)!);
        await File.WriteAllBytesAsync(source, RandomNumberGenerator.GetBytes(64 * 1024));
        var bytes = await TorrentCreator.CreateAsync(source, new TorrentCreateOptions { PieceLength = 32 * 1024 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        _meta = meta!;
        _relay = TestSessions.Create(_meta.InfoHash, _meta.Info, source, true, new TorrentSessionOptions { ListenAddress = IPAddress.Any }, _time);
        _disposables.Add(_relay);
        await _relay.StartAsync(CancellationToken.None);
        _relayAt = new IPEndPoint(IPAddress.Loopback, _relay.ListenPort);
    }

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Directory.Delete(_dir, true);
    }

    /// <summary>A raw peer from <paramref name="from"/>, registered, that said (BEP 10) it listens on <paramref name="listenPort"/>.</summary>
    private async Task<WireClient> PeerAsync(string from, int listenPort, bool holepunch = true)
    {
        var c = await WireClient.ConnectAsync(_relayAt, IPAddress.Parse(from));
        _disposables.Add(c);
        var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _relay.PeerConnected += id =>
        {
            if (id == c.PeerId) registered.TrySetResult();
        };
        await c.SendHandshakeAsync(_meta.InfoHash, reserved: PeerHandshake.FastBit | PeerHandshake.ExtensionBit);
        await registered.Task.WaitAsync(Deadline);
        var m = new Dictionary<string, byte> { ["ut_pex"] = 2 };
        if (holepunch) m[HolepunchCodec.ExtensionName] = TheirHolepunchId;
        var hs = new ExtendedHandshake { Extensions = m, ListenPort = listenPort }.Encode();
        await c.SendAsync(w => PeerWire.WriteExtended(w, ExtendedHandshake.HandshakeId, hs));
        // The relay's own extended handshake says it speaks ut_holepunch.
        var (id, payload) = await NextExtendedAsync(c, ExtendedHandshake.HandshakeId);
        Assert.True(ExtendedHandshake.TryDecode(payload, out var theirs, out _));
        Assert.Equal(ExtendedHandshake.UtHolepunchId, theirs!.ExtensionId(HolepunchCodec.ExtensionName));
        return c;
    }

    private static async Task<(byte Id, byte[] Payload)> NextExtendedAsync(WireClient c, byte id)
    {
        while (true)
        {
            var next = await c.Extended.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
            if (next.Id == id) return next;
        }
    }

    private static Task RendezvousAsync(WireClient c, IPEndPoint target)
    {
        var payload = HolepunchCodec.Encode(new HolepunchMessage(HolepunchMessageType.Rendezvous, target, HolepunchError.None));
        return c.SendAsync(w => PeerWire.WriteExtended(w, ExtendedHandshake.UtHolepunchId, payload));
    }

    private static async Task<HolepunchMessage> NextHolepunchAsync(WireClient c)
    {
        var (_, payload) = await NextExtendedAsync(c, TheirHolepunchId);
        Assert.Equal(HolepunchDecodeError.None, HolepunchCodec.TryDecode(payload, out var message));
        return message;
    }

    [Fact]
    public async Task A_rendezvous_for_a_connected_peer_that_speaks_holepunch_sends_connect_to_both_ends()
    {
        var a = await PeerAsync("127.0.0.2", 7001);
        var c = await PeerAsync("127.0.0.3", 7003);

        await RendezvousAsync(a, new IPEndPoint(IPAddress.Parse("127.0.0.3"), 7003));

        Assert.Equal(new HolepunchMessage(HolepunchMessageType.Connect, new IPEndPoint(IPAddress.Parse("127.0.0.3"), 7003), HolepunchError.None), await NextHolepunchAsync(a));
        Assert.Equal(new HolepunchMessage(HolepunchMessageType.Connect, new IPEndPoint(IPAddress.Parse("127.0.0.2"), 7001), HolepunchError.None), await NextHolepunchAsync(c));
    }

    [Fact]
    public async Task A_rendezvous_the_relay_cannot_serve_gets_the_bep_55_error_code()
    {
        var a = await PeerAsync("127.0.0.2", 7001);
        await PeerAsync("127.0.0.4", 7004, holepunch: false);

        var cases = new (IPEndPoint Target, HolepunchError Expected)[]
        {
            (new IPEndPoint(IPAddress.Parse("127.0.0.9"), 0), HolepunchError.NoSuchPeer),
            (new IPEndPoint(IPAddress.Parse("127.0.0.9"), 7009), HolepunchError.NotConnected),
            (new IPEndPoint(IPAddress.Parse("127.0.0.4"), 7004), HolepunchError.NoSupport),
            (_relayAt, HolepunchError.NoSelf),
        };
        foreach (var (target, expected) in cases)
        {
            await RendezvousAsync(a, target);
            Assert.Equal(new HolepunchMessage(HolepunchMessageType.Error, target, expected), await NextHolepunchAsync(a));
        }

        Assert.Equal(0, _relay.HolepunchCounters.Relayed);
        Assert.Equal(cases.Length, _relay.HolepunchCounters.ErrorsSent);
    }

    [Fact]
    public async Task An_undecodable_holepunch_message_drops_that_peer_alone()
    {
        var bad = await PeerAsync("127.0.0.2", 7001);
        var good = await PeerAsync("127.0.0.3", 7003);

        await bad.SendAsync(w => PeerWire.WriteExtended(w, ExtendedHandshake.UtHolepunchId, [0x07, 0x00]));

        await bad.Closed.Task.WaitAsync(Deadline);
        await RendezvousAsync(good, new IPEndPoint(IPAddress.Parse("127.0.0.9"), 7009));
        Assert.Equal(HolepunchError.NotConnected, (await NextHolepunchAsync(good)).Error);
    }
}
