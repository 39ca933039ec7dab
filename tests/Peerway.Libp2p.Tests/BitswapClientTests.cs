using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core.Multiformats;
using Peerway.Libp2p.Protocols;
using Peerway.Net;

namespace Peerway.Libp2p.Tests;

/// <summary>The fetching half of Bitswap against real hosts on loopback TCP: how wants are spread, moved and verified.</summary>
public sealed class BitswapClientTests : IAsyncDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly List<IAsyncDisposable> _owned = [];

    private static (Cid Cid, byte[] Data) Block(int i)
    {
        var data = RandomNumberGenerator.GetBytes(1000 + i);
        return (Cid.V1(0x55, Multihash.Sha256(data)), data);
    }

    private async Task<Libp2pHost> ServerAsync(Dictionary<Cid, byte[]> blocks)
    {
        var key = PeerKey.Generate();
        var host = new Libp2pHost(key, new TcpStreamTransport());
        _owned.Add(host);
        _ = new BitswapServer(host, c => blocks.TryGetValue(c, out var b) ? b : null);
        await host.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        return host;
    }

    private (Libp2pHost Host, BitswapClient Client) Client(TimeProvider? time = null, BitswapClientOptions? options = null)
    {
        var host = new Libp2pHost(PeerKey.Generate(), new TcpStreamTransport());
        var client = new BitswapClient(new BitswapServer(host, _ => null), options, time);
        _owned.Add(host);
        _owned.Add(client);
        return (host, client);
    }

    [Fact]
    public async Task Wants_are_spread_over_every_peer_and_a_dont_have_moves_a_want_to_a_peer_that_has_it()
    {
        var blocks = Enumerable.Range(0, 40).Select(Block).ToDictionary(b => b.Cid, b => b.Data);
        var half = blocks.Take(20).ToDictionary();
        var a = await ServerAsync(blocks);
        var b = await ServerAsync(blocks);
        var partial = await ServerAsync(half); // answers DONT_HAVE for the other 20
        var (host, client) = Client();
        var peers = new List<Libp2pConnection>();
        foreach (var s in new[] { a, b, partial }) peers.Add(await host.DialAsync(s.ListenAddresses[0], CancellationToken.None));

        var got = await Task.WhenAll(blocks.Keys.Select(c => client.GetAsync(c, peers, CancellationToken.None))).WaitAsync(Bound);

        Assert.Equal(blocks.Values, got);
        var stats = client.PeerStats.ToDictionary(s => s.Peer);
        Assert.All(new[] { a, b, partial }, s => Assert.True(stats[s.PeerId].Blocks > 0, $"{s.PeerId} sent nothing"));
        Assert.Equal(40, stats.Values.Sum(s => s.Blocks));
        Assert.All(stats.Values, s => Assert.Equal(0, s.Unwanted));
    }

    [Fact]
    public async Task A_block_nobody_has_ends_as_null()
    {
        var a = await ServerAsync(new Dictionary<Cid, byte[]>());
        var b = await ServerAsync(new Dictionary<Cid, byte[]>());
        var (host, client) = Client();
        var peers = new[] { await host.DialAsync(a.ListenAddresses[0], CancellationToken.None), await host.DialAsync(b.ListenAddresses[0], CancellationToken.None) };

        Assert.Null(await client.GetAsync(Block(1).Cid, peers, CancellationToken.None).WaitAsync(Bound));
    }

    [Fact]
    public async Task A_forged_block_is_never_handed_out_and_after_the_peer_timeout_the_want_goes_to_an_honest_peer()
    {
        var (cid, data) = Block(7);
        // The forger answers every want-block with other bytes under the wanted CID's prefix, and never DONT_HAVE.
        var forgerKey = PeerKey.Generate();
        var forger = new Libp2pHost(forgerKey, new TcpStreamTransport());
        _owned.Add(forger);
        var forged = new TaskCompletionSource();
        forger.Handle(BitswapMessage.Protocol120, async (stream, connection, ct) =>
        {
            var raw = await LengthPrefixed.ReadAsync(stream, BitswapMessage.MaxMessage, ct);
            Assert.Equal(Libp2pError.None, BitswapMessage.TryDecode(raw, out var wants));
            if (wants!.Wants.All(w => w.Cancel)) return;
            var reply = new BitswapMessage();
            reply.Blocks.Add((cid, RandomNumberGenerator.GetBytes(data.Length)));
            await using var back = await connection.OpenStreamAsync(BitswapMessage.Protocol120, ct);
            await LengthPrefixed.WriteAsync(back, reply.Encode(), ct);
            forged.TrySetResult();
        });
        await forger.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var honest = await ServerAsync(new Dictionary<Cid, byte[]> { [cid] = data });
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var (host, client) = Client(time, new BitswapClientOptions { PeerTimeout = TimeSpan.FromSeconds(5) });
        var toForger = await host.DialAsync(forger.ListenAddresses[0], CancellationToken.None);
        var toHonest = await host.DialAsync(honest.ListenAddresses[0], CancellationToken.None);

        // Only the forger is a candidate at first: it is asked, and answers with bad bytes.
        var rejected = new TaskCompletionSource<PeerId>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.UnwantedBlock += (peer, _) => rejected.TrySetResult(peer);
        var first = client.GetAsync(cid, [toForger], CancellationToken.None);
        await forged.Task.WaitAsync(Bound);
        Assert.Equal(forger.PeerId, await rejected.Task.WaitAsync(Bound));
        var stats = client.PeerStats.Single(s => s.Peer.Equals(forger.PeerId));
        Assert.Equal((0L, 1), (stats.Blocks, stats.Unwanted));
        Assert.False(first.IsCompleted);

        // A second caller adds the honest peer; once the forger's time is up the want goes there too.
        var second = client.GetAsync(cid, [toForger, toHonest], CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(data, await first.WaitAsync(Bound));
        Assert.Equal(data, await second.WaitAsync(Bound));
    }

    [Fact]
    public async Task A_peer_that_floods_unwanted_blocks_is_dropped_alone()
    {
        var floodKey = PeerKey.Generate();
        var flooder = new Libp2pHost(floodKey, new TcpStreamTransport());
        _owned.Add(flooder);
        await flooder.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var (cid, data) = Block(3);
        var honest = await ServerAsync(new Dictionary<Cid, byte[]> { [cid] = data });
        var (host, client) = Client(options: new BitswapClientOptions { MaxUnwantedBlocks = 4 });
        var toHonest = await host.DialAsync(honest.ListenAddresses[0], CancellationToken.None);
        // The flooder dials us and pushes blocks nobody asked for: the fifth is one too many.
        var fromFlooder = await flooder.DialAsync(await ListenAsync(host), CancellationToken.None);
        for (var i = 0; i < 5; i++)
        {
            var junk = new BitswapMessage();
            junk.Blocks.Add(Block(100 + i));
            await using var s = await fromFlooder.OpenStreamAsync(BitswapMessage.Protocol120, CancellationToken.None);
            await LengthPrefixed.WriteAsync(s, junk.Encode(), CancellationToken.None);
        }

        await fromFlooder.Closed.WaitAsync(Bound);
        Assert.Equal(data, await client.GetAsync(cid, [toHonest], CancellationToken.None).WaitAsync(Bound));
        Assert.True(client.PeerStats.Single(s => s.Peer.Equals(flooder.PeerId)).Unwanted > 4);
    }

    [Fact]
    public async Task An_answered_want_is_cancelled_at_the_other_peers_asked_but_not_at_the_peer_that_sent_the_block()
    {
        var (cid, data) = Block(11);
        var (next, nextData) = Block(12);
        var blocks = new Dictionary<Cid, byte[]> { [cid] = data, [next] = nextData };
        // Two recording peers on one want stream each: the slow one never answers, the other answers every want-block.
        var slow = await RecorderAsync(null);
        var answering = await RecorderAsync(blocks);
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var (host, client) = Client(time, new BitswapClientOptions { PeerTimeout = TimeSpan.FromSeconds(5) });
        var toSlow = await host.DialAsync(slow.Host.ListenAddresses[0], CancellationToken.None);
        var toAnswering = await host.DialAsync(answering.Host.ListenAddresses[0], CancellationToken.None);

        var first = client.GetAsync(cid, [toSlow], CancellationToken.None);
        await slow.WantSeen.Task.WaitAsync(Bound);
        var second = client.GetAsync(cid, [toSlow, toAnswering], CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(6)); // the slow peer's time is up: the want goes to the answering peer too
        Assert.Equal(data, await first.WaitAsync(Bound));
        Assert.Equal(data, await second.WaitAsync(Bound));
        // The slow peer still has the want on its list: it is cancelled there.
        await slow.CancelSeen.Task.WaitAsync(Bound);
        // Wants go out in order on one stream per peer: once the next want has been answered, any cancel for the first
        // block would have reached the answering peer before it.
        Assert.Equal(nextData, await client.GetAsync(next, [toAnswering], CancellationToken.None).WaitAsync(Bound));
        Assert.DoesNotContain(answering.Entries, e => e.Cancel);
        Assert.Contains(slow.Entries, e => e.Cancel && e.Cid.Equals(cid));
    }

    private sealed record Recorder(Libp2pHost Host, System.Collections.Concurrent.ConcurrentQueue<WantEntry> Entries, TaskCompletionSource WantSeen, TaskCompletionSource CancelSeen);

    /// <summary>A peer that records every wantlist entry it is sent and answers want-blocks from <paramref name="blocks"/> (none when null).</summary>
    private async Task<Recorder> RecorderAsync(Dictionary<Cid, byte[]>? blocks)
    {
        var host = new Libp2pHost(PeerKey.Generate(), new TcpStreamTransport());
        _owned.Add(host);
        var recorder = new Recorder(host, new(), new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously));
        host.Handle(BitswapMessage.Protocol120, async (stream, connection, ct) =>
        {
            Stream? back = null;
            try
            {
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

                    Assert.Equal(Libp2pError.None, BitswapMessage.TryDecode(raw, out var message));
                    var reply = new BitswapMessage();
                    foreach (var entry in message!.Wants)
                    {
                        recorder.Entries.Enqueue(entry);
                        (entry.Cancel ? recorder.CancelSeen : recorder.WantSeen).TrySetResult();
                        if (!entry.Cancel && blocks is not null && blocks.TryGetValue(entry.Cid, out var block)) reply.Blocks.Add((entry.Cid, block));
                    }

                    if (reply.IsEmpty) continue;
                    back ??= await connection.OpenStreamAsync(BitswapMessage.Protocol120, ct);
                    await LengthPrefixed.WriteAsync(back, reply.Encode(), ct);
                }
            }
            finally
            {
                if (back is not null) await back.DisposeAsync();
            }
        });
        await host.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        return recorder;
    }

    private static async Task<Multiaddr> ListenAsync(Libp2pHost host)
    {
        await host.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        return host.ListenAddresses[0];
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--) await _owned[i].DisposeAsync();
    }
}
