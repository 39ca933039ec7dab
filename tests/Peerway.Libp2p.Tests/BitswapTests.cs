using System.Net;
using Peerway.Core.Multiformats;
using Peerway.Libp2p.Protocols;
using Peerway.Net;

namespace Peerway.Libp2p.Tests;

public sealed class BitswapTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    internal static BitswapMessage SampleMessage()
    {
        var m = new BitswapMessage { FullWantlist = true };
        var block = "hello bitswap"u8.ToArray();
        var raw = Cid.V1(0x55, Multihash.Sha256(block));
        m.Wants.Add(new WantEntry(raw, 7, Cancel: false, WantHave: true, SendDontHave: true));
        m.Blocks.Add((raw, block));
        m.Presences.Add((Cid.V0(Multihash.Sha256("x"u8)), false));
        return m;
    }

    [Fact]
    public void A_message_round_trips_and_payload_cids_are_rebuilt_from_the_prefix()
    {
        var m = SampleMessage();
        Assert.Equal(Libp2pError.None, BitswapMessage.TryDecode(m.Encode(), out var back));
        Assert.True(back!.FullWantlist);
        var want = Assert.Single(back.Wants);
        Assert.Equal(m.Wants[0], want with { Cid = want.Cid });
        Assert.Equal(m.Wants[0].Cid, want.Cid);
        var (cid, data) = Assert.Single(back.Blocks);
        Assert.Equal(m.Blocks[0].Cid, cid);
        Assert.Equal(m.Blocks[0].Data, data);
        Assert.Equal(m.Presences[0], Assert.Single(back.Presences));
        // The 1.1 prefix of a CIDv1 raw sha2-256 block: version 1, codec 0x55, sha2-256 (0x12), 32 bytes.
        Assert.Equal([0x01, 0x55, 0x12, 0x20], BitswapMessage.Prefix(cid));
    }

    [Fact]
    public async Task The_server_answers_wants_with_blocks_haves_and_dont_haves_on_its_own_stream()
    {
        var block = "a block"u8.ToArray();
        var held = Cid.V1(0x55, Multihash.Sha256(block));
        var absent = Cid.V1(0x55, Multihash.Sha256("absent"u8));
        using var ks = PeerKey.Generate();
        using var kc = PeerKey.Generate();
        await using var server = new Libp2pHost(ks, new TcpStreamTransport());
        var bitswap = new BitswapServer(server, c => c.Equals(held) ? block : null);
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        await using var client = new Libp2pHost(kc, new TcpStreamTransport());
        var replies = System.Threading.Channels.Channel.CreateUnbounded<BitswapMessage>();
        client.Handle(BitswapMessage.Protocol120, async (stream, _, ct) =>
        {
            var raw = await LengthPrefixed.ReadAsync(stream, BitswapMessage.MaxMessage, ct);
            Assert.Equal(Libp2pError.None, BitswapMessage.TryDecode(raw, out var m));
            replies.Writer.TryWrite(m!);
        });
        await using var conn = await client.DialAsync(server.ListenAddresses[0], CancellationToken.None);
        await using (var stream = await conn.OpenStreamAsync(BitswapMessage.Protocol120, CancellationToken.None))
        {
            var want = new BitswapMessage();
            want.Wants.Add(new WantEntry(held, 1, false, WantHave: false, SendDontHave: true));
            want.Wants.Add(new WantEntry(held, 1, false, WantHave: true, SendDontHave: true));
            want.Wants.Add(new WantEntry(absent, 1, false, WantHave: false, SendDontHave: true));
            await LengthPrefixed.WriteAsync(stream, want.Encode(), CancellationToken.None);
        }

        var reply = await replies.Reader.ReadAsync().AsTask().WaitAsync(Bound);
        var (cid, data) = Assert.Single(reply.Blocks);
        Assert.Equal(held, cid);
        Assert.Equal(block, data);
        Assert.Contains((held, true), reply.Presences);
        Assert.Contains((absent, false), reply.Presences);
        Assert.Equal(1, bitswap.BlocksSent);
    }

    [Fact]
    public async Task The_server_sends_every_answer_to_a_peer_on_one_stream_it_keeps()
    {
        var blocks = Enumerable.Range(0, 3).Select(i => new byte[(1 << 20) + i]).ToList();
        var cids = blocks.Select(b => Cid.V1(0x55, Multihash.Sha256(b))).ToList();
        using var ks = PeerKey.Generate();
        using var kc = PeerKey.Generate();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var server = new Libp2pHost(ks, new TcpStreamTransport(), null, clock);
        _ = new BitswapServer(server, c => cids.IndexOf(c) is var i and >= 0 ? blocks[i] : null);
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        await using var client = new Libp2pHost(kc, new TcpStreamTransport());
        var replies = System.Threading.Channels.Channel.CreateUnbounded<BitswapMessage>();
        var streams = 0;
        client.Handle(BitswapMessage.Protocol120, async (stream, _, ct) =>
        {
            Interlocked.Increment(ref streams);
            while (true)
            {
                byte[] raw;
                try
                {
                    raw = await LengthPrefixed.ReadAsync(stream, BitswapMessage.MaxMessage, ct);
                }
                catch (EndOfStreamException)
                {
                    return;
                }

                Assert.Equal(Libp2pError.None, BitswapMessage.TryDecode(raw, out var m));
                replies.Writer.TryWrite(m!);
            }
        });
        await using var conn = await client.DialAsync(server.ListenAddresses[0], CancellationToken.None);

        // Each want on a stream of its own, as Helia sends them; the answers all come back on one stream, until it has
        // been idle longer than AnswerStreamIdle (Helia aborts an inbound stream idle for 10 s): then a new one.
        for (var round = 0; round < 4; round++)
        {
            var cid = cids[round % cids.Count];
            if (round == cids.Count)
            {
                Assert.Equal(1, Volatile.Read(ref streams));
                clock.Advance(TimeSpan.FromSeconds(6));
            }

            await using var stream = await conn.OpenStreamAsync(BitswapMessage.Protocol120, CancellationToken.None);
            var want = new BitswapMessage();
            want.Wants.Add(new WantEntry(cid, 1, false, WantHave: false, SendDontHave: true));
            await LengthPrefixed.WriteAsync(stream, want.Encode(), CancellationToken.None);
            var reply = await replies.Reader.ReadAsync().AsTask().WaitAsync(Bound);
            var (got, data) = Assert.Single(reply.Blocks);
            Assert.Equal(cid, got);
            Assert.Equal(blocks[cids.IndexOf(cid)], data);
        }

        Assert.Equal(2, Volatile.Read(ref streams));
    }
}
