using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Stun;
using Peerway.Nat.Turn;
using Peerway.Net;

namespace Peerway.Nat.Tests.Turn;

/// <summary>Relay sockets on a virtual network, at the server's IP from port 50000 up.</summary>
internal sealed class VirtualRelayFactory(VirtualNetwork network, IPAddress ip, int limit = 100) : IRelaySocketFactory
{
    private int _next = 50_000;

    public int Created { get; private set; }

    public bool Supports(AddressFamily family) => family == ip.AddressFamily;

    public IDatagramSocket? TryCreate(AddressFamily family)
    {
        if (Created >= limit) return null;
        Created++;
        return network.CreateSocket(new IPEndPoint(ip, Interlocked.Increment(ref _next)));
    }
}

/// <summary>A virtual socket whose datagrams land in a queue the test awaits.</summary>
internal sealed class Inbox : IDisposable
{
    private readonly ConcurrentQueue<(byte[] Data, IPEndPoint From)> _queue = new();
    private readonly SemaphoreSlim _signal = new(0);

    public Inbox(IDatagramSocket socket)
    {
        Socket = socket;
        socket.Start((d, from) =>
        {
            _queue.Enqueue((d.ToArray(), from));
            _signal.Release();
        });
    }

    public IDatagramSocket Socket { get; }

    public int Count => _queue.Count;

    public async Task<(byte[] Data, IPEndPoint From)> NextAsync()
    {
        Assert.True(await _signal.WaitAsync(TimeSpan.FromSeconds(10)), "no datagram arrived");
        Assert.True(_queue.TryDequeue(out var item));
        return item;
    }

    public void Dispose()
    {
        Socket.Dispose();
        _signal.Dispose();
    }
}

public sealed class TurnServerTests : IDisposable
{
    internal static readonly IPAddress ServerIp = IPAddress.Parse("198.51.100.1");
    private static readonly IPNetwork TestNet = IPNetwork.Parse("203.0.113.0/24");

    private readonly PumpDeliveryScheduler _scheduler = new(TimeProvider.System);
    private readonly VirtualNetwork _net;
    private readonly FakeTimeProvider _time = new();
    private readonly List<IDisposable> _owned = [];

    public TurnServerTests() => _net = new VirtualNetwork(_scheduler);

    private static TurnServerOptions Options(Func<TurnServerOptions, TurnServerOptions>? change = null)
    {
        var o = new TurnServerOptions
        {
            Realm = "test",
            Users = new Dictionary<string, string> { ["alice"] = "secret", ["bob"] = "hunter2" },
            SharedSecret = "rest-secret",
            AllowedPeers = [TestNet],
        };
        return change is null ? o : change(o);
    }

    private (TurnServer Server, IPEndPoint EndPoint) Server(TurnServerOptions options, int relayLimit = 100)
    {
        var listener = _net.CreateSocket(new IPEndPoint(ServerIp, 3478));
        var server = new TurnServer([listener], new VirtualRelayFactory(_net, ServerIp, relayLimit), _time, options);
        server.Start();
        _owned.Add(server);
        return (server, listener.LocalEndPoint);
    }

    private TurnClient Client(IPEndPoint server, string user = "alice", string password = "secret", TurnDataHandler? onData = null, int host = 10)
    {
        var socket = _net.CreateSocket(new IPEndPoint(IPAddress.Parse($"192.168.1.{host}"), 40000));
        var client = new TurnClient(socket, server, new TurnCredentials(user, password), _time, onData);
        _owned.Add(client);
        return client;
    }

    private Inbox Peer(int host = 5)
    {
        var inbox = new Inbox(_net.CreateSocket(new IPEndPoint(IPAddress.Parse($"203.0.113.{host}"), 7000)));
        _owned.Add(inbox);
        return inbox;
    }

    [Fact]
    public async Task Allocate_send_data_and_channels_relay_both_ways()
    {
        var (server, ep) = Server(Options());
        var received = new ConcurrentQueue<(string Text, IPEndPoint Peer)>();
        var got = new SemaphoreSlim(0);
        var client = Client(ep, onData: (d, p) =>
        {
            received.Enqueue((Encoding.UTF8.GetString(d), p));
            got.Release();
        });
        var peer = Peer();

        var relayed = await client.AllocateAsync();
        Assert.Equal(ServerIp, relayed.Address);
        Assert.Equal(client.LocalEndPoint, client.MappedAddress);
        Assert.Equal(TimeSpan.FromMinutes(10), client.Lifetime);
        Assert.Equal(1, server.AllocationCount);

        // Without a permission nothing passes, in either direction.
        client.Send("early"u8, peer.Socket.LocalEndPoint);
        await client.CreatePermissionAsync([peer.Socket.LocalEndPoint]);

        // Send indication → peer, from the relayed address; peer → Data indication.
        client.Send("hello peer"u8, peer.Socket.LocalEndPoint);
        var (data, from) = await peer.NextAsync();
        Assert.Equal("hello peer", Encoding.UTF8.GetString(data));
        Assert.Equal(relayed, from);
        peer.Socket.Send("hello client"u8, relayed);
        Assert.True(await got.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(received.TryDequeue(out var r1));
        Assert.Equal(("hello client", peer.Socket.LocalEndPoint), r1);

        // Channel: ChannelData both ways.
        var channel = await client.BindChannelAsync(peer.Socket.LocalEndPoint);
        Assert.Equal(0x4000, channel);
        client.Send("over channel"u8, peer.Socket.LocalEndPoint);
        (data, from) = await peer.NextAsync();
        Assert.Equal("over channel", Encoding.UTF8.GetString(data));
        Assert.Equal(relayed, from);
        peer.Socket.Send("back on channel"u8, relayed);
        Assert.True(await got.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(received.TryDequeue(out var r2));
        Assert.Equal(("back on channel", peer.Socket.LocalEndPoint), r2);
        Assert.Equal(2, server.Stats.RelayedToPeer);
        Assert.Equal(2, server.Stats.RelayedToClient);
        Assert.Equal(0, peer.Count);
    }

    [Fact]
    public async Task Wrong_password_is_401_and_rest_credentials_work_until_they_expire()
    {
        var (_, ep) = Server(Options());
        var wrong = Client(ep, "alice", "nope", host: 11);
        var e = await Assert.ThrowsAsync<TurnException>(() => wrong.AllocateAsync());
        Assert.Equal(401, e.Code);

        var expiry = _time.GetUtcNow().AddHours(1).ToUnixTimeSeconds();
        var user = $"{expiry}:carol";
        var rest = Client(ep, user, TurnAuthenticator.RestPassword(Encoding.UTF8.GetBytes("rest-secret"), user), host: 12);
        await rest.AllocateAsync();

        var old = _time.GetUtcNow().AddSeconds(-1).ToUnixTimeSeconds();
        var stale = $"{old}:carol";
        var expired = Client(ep, stale, TurnAuthenticator.RestPassword(Encoding.UTF8.GetBytes("rest-secret"), stale), host: 13);
        Assert.Equal(401, (await Assert.ThrowsAsync<TurnException>(() => expired.AllocateAsync())).Code);
    }

    [Fact]
    public async Task Stale_nonce_is_438_and_the_client_recovers()
    {
        var (server, ep) = Server(Options());
        var client = Client(ep);
        await client.AllocateAsync();
        var errorsBefore = server.Stats.Errors;
        _time.Advance(TimeSpan.FromMinutes(11)); // nonce lifetime 10 min; allocation lifetime 10 min → refresh first
        // The allocation has expired too: a Refresh gets 438 (then retried) and finally 437.
        var e = await Assert.ThrowsAsync<TurnException>(() => client.RefreshAsync(TimeSpan.FromMinutes(10)));
        Assert.Equal(437, e.Code);
        Assert.Equal(errorsBefore + 2, server.Stats.Errors); // one 438, one 437
        Assert.Equal(0, server.AllocationCount);
    }

    [Fact]
    public async Task Quotas_per_user_486_and_total_508()
    {
        var (_, ep) = Server(Options(o => o with { UserQuota = 1, TotalQuota = 2 }));
        await Client(ep, host: 20).AllocateAsync();
        Assert.Equal(486, (await Assert.ThrowsAsync<TurnException>(() => Client(ep, host: 21).AllocateAsync())).Code);
        await Client(ep, "bob", "hunter2", host: 22).AllocateAsync();
        var expiry = _time.GetUtcNow().AddHours(1).ToUnixTimeSeconds();
        var user = $"{expiry}:dave";
        var third = Client(ep, user, TurnAuthenticator.RestPassword(Encoding.UTF8.GetBytes("rest-secret"), user), host: 23);
        Assert.Equal(508, (await Assert.ThrowsAsync<TurnException>(() => third.AllocateAsync())).Code);
    }

    [Fact]
    public async Task Relay_ports_exhausted_is_508()
    {
        var (_, ep) = Server(Options(), relayLimit: 1);
        await Client(ep, host: 30).AllocateAsync();
        Assert.Equal(508, (await Assert.ThrowsAsync<TurnException>(() => Client(ep, "bob", "hunter2", host: 31).AllocateAsync())).Code);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("192.168.0.9")]
    [InlineData("172.20.0.1")]
    [InlineData("169.254.1.1")]
    [InlineData("224.0.0.1")]
    [InlineData("0.0.0.0")]
    public async Task Loopback_private_and_reserved_peers_are_403_by_default(string ip)
    {
        var (_, ep) = Server(Options());
        var client = Client(ep);
        await client.AllocateAsync();
        var peer = new IPEndPoint(IPAddress.Parse(ip), 9);
        Assert.Equal(403, (await Assert.ThrowsAsync<TurnException>(() => client.CreatePermissionAsync([peer]))).Code);
        Assert.Equal(403, (await Assert.ThrowsAsync<TurnException>(() => client.BindChannelAsync(peer))).Code);
    }

    [Fact]
    public async Task Allow_list_opens_a_denied_range_and_deny_list_closes_an_open_one()
    {
        var (_, ep) = Server(Options(o => o with { AllowedPeers = [IPNetwork.Parse("127.0.0.0/8")], DeniedPeers = [IPNetwork.Parse("8.8.8.0/24")] }));
        var client = Client(ep);
        await client.AllocateAsync();
        await client.CreatePermissionAsync([new IPEndPoint(IPAddress.Loopback, 9)]);
        Assert.Equal(403, (await Assert.ThrowsAsync<TurnException>(() => client.CreatePermissionAsync([new IPEndPoint(IPAddress.Parse("8.8.8.8"), 9)]))).Code);
        Assert.Equal(403, (await Assert.ThrowsAsync<TurnException>(() => client.CreatePermissionAsync([new IPEndPoint(IPAddress.Parse("203.0.113.9"), 9)]))).Code);
    }

    [Fact]
    public async Task Allocations_expire_refresh_extends_and_zero_deletes()
    {
        var (server, ep) = Server(Options(o => o with { NonceLifetime = TimeSpan.FromHours(2) }));
        var client = Client(ep);
        await client.AllocateAsync(TimeSpan.FromMinutes(20));
        Assert.Equal(TimeSpan.FromMinutes(20), client.Lifetime);
        _time.Advance(TimeSpan.FromMinutes(15));
        Assert.Equal(1, server.AllocationCount);
        Assert.Equal(TimeSpan.FromHours(1), await client.RefreshAsync(TimeSpan.FromHours(5))); // clamped to the max
        _time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(1, server.AllocationCount);
        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(0, server.AllocationCount);

        await client.AllocateAsync();
        Assert.Equal(1, server.AllocationCount);
        Assert.Equal(TimeSpan.Zero, await client.RefreshAsync(TimeSpan.Zero));
        Assert.Equal(0, server.AllocationCount);
    }

    [Fact]
    public async Task Permissions_expire_after_five_minutes()
    {
        var (_, ep) = Server(Options(o => o with { NonceLifetime = TimeSpan.FromHours(2) }));
        var client = Client(ep);
        var relayed = await client.AllocateAsync();
        var peer = Peer();
        await client.CreatePermissionAsync([peer.Socket.LocalEndPoint]);
        client.Send("one"u8, peer.Socket.LocalEndPoint);
        Assert.Equal("one", Encoding.UTF8.GetString((await peer.NextAsync()).Data));
        _time.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1));
        client.Send("two"u8, peer.Socket.LocalEndPoint);
        await client.CreatePermissionAsync([peer.Socket.LocalEndPoint]); // a round trip: "two" was handled before it
        client.Send("three"u8, peer.Socket.LocalEndPoint);
        Assert.Equal("three", Encoding.UTF8.GetString((await peer.NextAsync()).Data));
        Assert.NotNull(relayed);
    }

    [Fact]
    public async Task Bandwidth_cap_drops_beyond_the_rate_and_refills_with_time()
    {
        var (server, ep) = Server(Options(o => o with { MaxBytesPerSecond = 1000 }));
        var client = Client(ep);
        await client.AllocateAsync();
        var peer = Peer();
        await client.BindChannelAsync(peer.Socket.LocalEndPoint);
        var payload = new byte[400];
        for (var i = 0; i < 5; i++) client.Send(payload, peer.Socket.LocalEndPoint);
        await client.RefreshAsync(TimeSpan.FromMinutes(10)); // a round trip after the five sends
        Assert.Equal(2, server.Stats.RelayedToPeer);
        Assert.Equal(3, server.Stats.RateLimited);
        _time.Advance(TimeSpan.FromSeconds(1));
        client.Send(payload, peer.Socket.LocalEndPoint);
        await client.RefreshAsync(TimeSpan.FromMinutes(10));
        Assert.Equal(3, server.Stats.RelayedToPeer);
    }

    [Fact]
    public async Task Second_allocate_on_the_same_five_tuple_is_437_and_a_retransmission_gets_the_same_answer()
    {
        var (_, ep) = Server(Options());
        var client = Client(ep);
        await client.AllocateAsync();
        Assert.Equal(437, (await Assert.ThrowsAsync<TurnException>(() => client.AllocateAsync())).Code);
    }

    [Fact]
    public async Task Unauthenticated_answers_are_never_larger_than_the_request_except_binding_and_the_challenge()
    {
        var (server, ep) = Server(Options());
        var raw = new Inbox(_net.CreateSocket(new IPEndPoint(IPAddress.Parse("192.168.1.99"), 40000)));
        _owned.Add(raw);
        static byte[] Message(StunMethod method, ushort? unknownAttribute = null)
        {
            var b = new byte[64];
            var w = new StunWriter(b, method, StunClass.Request, StunClient.NewTransactionId());
            if (unknownAttribute is { } t) w.AddUInt32(t, 0);
            return b[..w.Length];
        }

        // 420 with UNKNOWN-ATTRIBUTES (36 bytes) to a 28-byte request, 400 (28 bytes) to a 20-byte unknown method:
        // both would amplify, so neither is sent.
        raw.Socket.Send(Message(StunMethod.Allocate, 0x7ABC), ep);
        raw.Socket.Send(Message((StunMethod)0x00A), ep);
        // The 401 challenge is compact (48 bytes + REALM) and exempt, as is Binding; they also order this check.
        raw.Socket.Send(Message(StunMethod.Allocate), ep);
        var (challenge, _) = await raw.NextAsync();
        Assert.True(StunMessage.TryDecode(challenge, out var m, out _));
        Assert.True(m!.TryGetErrorCode(out var code, out _));
        Assert.Equal(401, code);
        Assert.True(challenge.Length <= 48 + 4, $"challenge is {challenge.Length} bytes");
        raw.Socket.Send(Message(StunMethod.Binding), ep);
        var (answer, _) = await raw.NextAsync();
        Assert.True(StunMessage.TryDecode(answer, out var binding, out _));
        Assert.Equal(StunMethod.Binding, binding!.Method);
        Assert.Equal(2, server.Stats.AmplificationDrops);
        Assert.Equal(0, raw.Count);
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _scheduler.Dispose();
    }
}
