using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Stun;
using Peerway.Nat.Tests.Stun;
using Peerway.Nat.Turn;
using Peerway.Net;

namespace Peerway.Nat.Tests.Turn;

/// <summary>Hostile and broken input against the TURN and STUN servers, driven synchronously through their sockets.</summary>
public sealed class TurnBadInputTests
{
    private static readonly IPEndPoint ServerEp = new(IPAddress.Parse("198.51.100.1"), 3478);

    private sealed class NullRelays : IRelaySocketFactory
    {
        private readonly FakeTimeProvider _time;
        private int _port = 50_000;

        public NullRelays(FakeTimeProvider time) => _time = time;

        public int Live { get; private set; }

        public bool Supports(AddressFamily family) => family == AddressFamily.InterNetwork;

        public IDatagramSocket? TryCreate(AddressFamily family)
        {
            Live++;
            return new RecordingSocket(new IPEndPoint(ServerEp.Address, _port++), _time);
        }
    }

    private static (TurnServer Server, RecordingSocket Listener, FakeTimeProvider Time) NewServer(Func<TurnServerOptions, TurnServerOptions>? change = null)
    {
        var time = new FakeTimeProvider();
        var listener = new RecordingSocket(ServerEp, time);
        var options = new TurnServerOptions
        {
            Realm = "fuzz",
            Users = new Dictionary<string, string> { ["alice"] = "secret" },
            AllowedPeers = [IPNetwork.Parse("203.0.113.0/24")],
            UserQuota = 3,
        };
        var server = new TurnServer([listener], new NullRelays(time), time, change is null ? options : change(options));
        server.Start();
        return (server, listener, time);
    }

    private static StunMessage Last(RecordingSocket socket)
    {
        Assert.NotEmpty(socket.Sent);
        Assert.True(StunMessage.TryDecode(socket.Sent[^1].Data, out var m, out var e), e.ToString());
        return m!;
    }

    private static int Code(StunMessage m)
    {
        Assert.True(m.TryGetErrorCode(out var code, out _));
        return code;
    }

    /// <summary>Builds an authenticated request the way a client does after the 401.</summary>
    private static byte[] Signed(StunMethod method, string nonce, byte[] key, Action<StunWriterBox>? add = null, bool fingerprint = true, string user = "alice")
    {
        var box = new StunWriterBox();
        add?.Invoke(box);
        var buffer = new byte[512];
        var w = new StunWriter(buffer, method, StunClass.Request, StunClient.NewTransactionId());
        foreach (var (t, v) in box.Items) w.Add(t, v);
        foreach (var (t, ep) in box.XorAddresses) w.AddXorAddress(t, ep);
        w.AddUtf8(StunAttributeType.Username, user);
        w.AddUtf8(StunAttributeType.Realm, "fuzz");
        w.AddUtf8(StunAttributeType.Nonce, nonce);
        w.AddMessageIntegrity(key);
        if (fingerprint) w.AddFingerprint();
        return buffer[..w.Length];
    }

    internal sealed class StunWriterBox
    {
        public List<(ushort, byte[])> Items { get; } = [];

        public List<(ushort, IPEndPoint)> XorAddresses { get; } = [];
    }

    private static string Nonce(RecordingSocket listener, IPEndPoint client)
    {
        var b = new byte[128];
        var w = new StunWriter(b, StunMethod.Allocate, StunClass.Request, StunClient.NewTransactionId());
        w.AddUInt32(StunAttributeType.RequestedTransport, 17u << 24);
        w.AddUtf8(StunAttributeType.Software, "padding so the challenge fits....");
        listener.Handler!(b.AsSpan(0, w.Length), client);
        var m = Last(listener);
        Assert.Equal(401, Code(m));
        Assert.True(m.TryGetText(StunAttributeType.Nonce, 763, out var nonce));
        return nonce;
    }

    private static readonly byte[] Key = StunAttributes.LongTermKey("alice", "fuzz", "secret");

    private static Action<StunWriterBox> Udp => b => b.Items.Add((StunAttributeType.RequestedTransport, [17, 0, 0, 0]));

    [Fact]
    public void Wrong_integrity_stale_nonce_bad_fingerprint_quota_and_forbidden_peer_get_the_right_answers()
    {
        var (server, listener, time) = NewServer();
        var client = new IPEndPoint(IPAddress.Parse("192.0.2.10"), 5000);
        var nonce = Nonce(listener, client);

        // Wrong MESSAGE-INTEGRITY → 401 with a fresh challenge.
        listener.Handler!(Signed(StunMethod.Allocate, nonce, StunAttributes.LongTermKey("alice", "fuzz", "wrong"), Udp), client);
        Assert.Equal(401, Code(Last(listener)));

        // A nonce for another client, or forged, is stale: 438.
        listener.Handler!(Signed(StunMethod.Allocate, "AAAAAAAAAAAA", Key, Udp), client);
        Assert.Equal(438, Code(Last(listener)));
        listener.Handler!(Signed(StunMethod.Allocate, nonce, Key, Udp), new IPEndPoint(IPAddress.Parse("192.0.2.11"), 5000));
        Assert.Equal(438, Code(Last(listener)));

        // A broken FINGERPRINT: silently dropped.
        var sent = listener.Sent.Count;
        var bad = Signed(StunMethod.Allocate, nonce, Key, Udp);
        bad[^1] ^= 0x55;
        listener.Handler!(bad, client);
        Assert.Equal(sent, listener.Sent.Count);

        // Good: allocate. Then a forbidden peer → 403; a wrong family → 443; a bad channel number → 400.
        listener.Handler!(Signed(StunMethod.Allocate, nonce, Key, Udp), client);
        var ok = Last(listener);
        Assert.Equal(StunClass.SuccessResponse, ok.Class);
        Assert.True(StunAttributes.VerifyIntegrity(ok, Key));
        listener.Handler!(Signed(StunMethod.CreatePermission, nonce, Key, b => b.XorAddresses.Add((StunAttributeType.XorPeerAddress, new IPEndPoint(IPAddress.Loopback, 1)))), client);
        Assert.Equal(403, Code(Last(listener)));
        listener.Handler!(Signed(StunMethod.CreatePermission, nonce, Key, b => b.XorAddresses.Add((StunAttributeType.XorPeerAddress, new IPEndPoint(IPAddress.IPv6Loopback, 1)))), client);
        Assert.Equal(443, Code(Last(listener)));
        listener.Handler!(Signed(StunMethod.ChannelBind, nonce, Key, b =>
        {
            b.Items.Add((StunAttributeType.ChannelNumber, [0x30, 0x00, 0, 0]));
            b.XorAddresses.Add((StunAttributeType.XorPeerAddress, new IPEndPoint(IPAddress.Parse("203.0.113.5"), 1)));
        }), client);
        Assert.Equal(400, Code(Last(listener)));
        listener.Handler!(Signed(StunMethod.Allocate, nonce, Key, b => b.Items.Add((StunAttributeType.RequestedTransport, [6, 0, 0, 0]))), new IPEndPoint(client.Address, 5001));
        Assert.Equal(442, Code(Last(listener)));

        // Quota 3 per user: the 4th allocation (other ports of the same host) is 486.
        for (var port = 6001; port <= 6003; port++)
        {
            var c = new IPEndPoint(client.Address, port);
            listener.Handler!(Signed(StunMethod.Allocate, nonce, Key, Udp), c);
            if (port < 6003) Assert.Equal(StunClass.SuccessResponse, Last(listener).Class);
            else Assert.Equal(486, Code(Last(listener)));
        }

        // Time passes beyond the nonce lifetime: 438, and the allocations expire.
        time.Advance(TimeSpan.FromMinutes(11));
        listener.Handler!(Signed(StunMethod.Refresh, nonce, Key), client);
        Assert.Equal(438, Code(Last(listener)));
        Assert.Equal(0, server.AllocationCount);
    }

    [Fact]
    public void A_million_fuzzed_messages_leave_the_servers_running_and_never_amplify()
    {
        var (server, listener, _) = NewServer(o => o with { UserQuota = 1_000_000, TotalQuota = 50 });
        var stunSocket = new RecordingSocket(ServerEp, new FakeTimeProvider());
        using var stun = new StunServer([stunSocket], new StunServerOptions());
        stun.Start();
        var client = new IPEndPoint(IPAddress.Parse("192.0.2.10"), 5000);
        var nonce = Nonce(listener, client);
        byte[][] seeds =
        [
            Signed(StunMethod.Allocate, nonce, Key, Udp),
            Signed(StunMethod.Refresh, nonce, Key, b => b.Items.Add((StunAttributeType.Lifetime, [0, 0, 2, 0]))),
            Signed(StunMethod.CreatePermission, nonce, Key, b => b.XorAddresses.Add((StunAttributeType.XorPeerAddress, new IPEndPoint(IPAddress.Parse("203.0.113.5"), 1)))),
            Signed(StunMethod.ChannelBind, nonce, Key, b =>
            {
                b.Items.Add((StunAttributeType.ChannelNumber, [0x40, 0x01, 0, 0]));
                b.XorAddresses.Add((StunAttributeType.XorPeerAddress, new IPEndPoint(IPAddress.Parse("203.0.113.5"), 1)));
            }),
            [0x40, 0x01, 0x00, 0x04, 1, 2, 3, 4],
            StunCodecTests.SampleRequest,
            StunCodecTests.SampleLongTermRequest,
        ];

        var random = new Random(12345);
        const int Count = 1_000_000;
        var buffer = new byte[600];
        for (var i = 0; i < Count; i++)
        {
            int length;
            switch (i % 4)
            {
                case 0:
                    length = random.Next(0, 120);
                    random.NextBytes(buffer.AsSpan(0, length));
                    if (length >= 8 && (i & 8) == 0)
                    {
                        // Plausible header: STUN type bits, magic cookie, a consistent length.
                        buffer[0] &= 0x3F;
                        buffer[2] = 0;
                        buffer[3] = (byte)((length - 20) & ~3);
                        buffer[4] = 0x21; buffer[5] = 0x12; buffer[6] = 0xA4; buffer[7] = 0x42;
                    }

                    break;
                default:
                    var seed = seeds[random.Next(seeds.Length)];
                    seed.CopyTo(buffer, 0);
                    length = seed.Length;
                    for (var k = random.Next(1, 4); k > 0; k--) buffer[random.Next(length)] ^= (byte)(1 << random.Next(8));
                    if ((i & 16) != 0) length = random.Next(length + 1);
                    break;
            }

            var before = listener.Sent.Count;
            var source = new IPEndPoint(client.Address, 5000 + (i % 64));
            listener.Handler!(buffer.AsSpan(0, length), source);
            stunSocket.Handler!(buffer.AsSpan(0, length), source);
            for (var j = before; j < listener.Sent.Count; j++)
            {
                var answer = listener.Sent[j].Data;
                Assert.True(StunMessage.TryDecode(answer, out var m, out _));
                var authenticated = m!.IntegrityIndex >= 0;
                var challenge = m.TryGetErrorCode(out var code, out _) && code is 401 or 438;
                if (!authenticated && !challenge && m.Method != StunMethod.Binding)
                {
                    Assert.True(answer.Length <= length, $"{answer.Length}-byte answer to a {length}-byte request");
                }
            }

            if (listener.Sent.Count > 10_000) listener.Sent.RemoveRange(0, listener.Sent.Count);
            if (stunSocket.Sent.Count > 10_000) stunSocket.Sent.Clear();
        }

        // Every datagram is accounted for: a request answered (or deliberately not), a drop, or a relay.
        var s = server.Stats;
        Assert.Equal(Count + 1, s.Requests + s.Dropped + s.RelayedToPeer + s.RateLimited);
        Assert.True(s.Requests > 1_000, $"{s.Requests} requests");
        Assert.True(server.AllocationCount <= 50);

        // Still serving: a fresh client allocates.
        var fresh = new IPEndPoint(IPAddress.Parse("192.0.2.99"), 7000);
        var (server2Nonce, before2) = (Nonce(listener, fresh), listener.Sent.Count);
        listener.Handler!(Signed(StunMethod.Refresh, server2Nonce, Key), fresh);
        Assert.Equal(437, Code(Last(listener)));
        Assert.True(listener.Sent.Count > before2);
        stunSocket.Handler!(StunCodecTests.SampleRequest.AsSpan(0, 20).ToArray().Select((b, k) => k == 3 ? (byte)0 : b).ToArray(), fresh);
        Assert.Equal(StunClass.SuccessResponse, Last(stunSocket).Class);
    }
}
