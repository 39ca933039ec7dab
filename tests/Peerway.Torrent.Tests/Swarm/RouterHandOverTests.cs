using System.Net;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;
using Peerway.TestSupport;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// The idle-flood lockout of issue 20 under <see cref="TorrentClient"/>: `peerway share` stopped accepting for good
/// (its listen backlog full, `peerway get` at 0 peers) because the router handed a connection to its torrent while
/// holding the router's lock, and the torrent, registering another peer under its own lock, asked the router for its
/// port: each waited for the other. Here, on a <see cref="VirtualStreamNetwork"/> with a <see cref="FakeTimeProvider"/>,
/// one torrent is kept busy under its lock (as by a long registration) while peers of it and of a second torrent of
/// the same client connect: the second torrent's peer must still be accepted, routed and registered.
/// </summary>
public sealed class RouterHandOverTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private static async Task<(TorrentMetainfo Meta, byte[] Content)> MakeTorrentAsync(TempDirectory dir, string name)
    {
        var content = RandomNumberGenerator.GetBytes(64 * 1024);
        var path = dir.Combine(name);
        await File.WriteAllBytesAsync(path, content);
        var bytes = await TorrentCreator.CreateAsync(path, new TorrentCreateOptions { PieceLength = 16 * 1024 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!, content);
    }

    private static byte[] Handshake(NodeId infoHash)
    {
        var bytes = new byte[PeerWire.HandshakeLength];
        PeerWire.WriteHandshake(bytes, new PeerHandshake(PeerHandshake.FastBit | PeerHandshake.ExtensionBit, infoHash, NodeId.Random()));
        return bytes;
    }

    private static TaskCompletionSource RegisteredOn(TorrentHandle handle)
    {
        var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        handle.Session!.PeerConnected += _ => registered.TrySetResult();
        return registered;
    }

    [Fact]
    public async Task A_torrent_busy_under_its_lock_holds_up_neither_the_router_nor_another_torrents_peers()
    {
        using var dir = new TempDirectory("pw-router-");
        var (a, contentA) = await MakeTorrentAsync(dir, "a.bin");
        var (b, contentB) = await MakeTorrentAsync(dir, "b.bin");
        var time = new FakeTimeProvider();
        var scheduler = new DeterministicScheduler(time);
        var network = new VirtualStreamNetwork(scheduler, time);
        var seeder = network.AddEndpoint();
        var store = new MemoryStorageFactory();
        store.Add(a.Info, contentA);
        store.Add(b.Info, contentB);
        var listenAt = new IPEndPoint(seeder.Address, 6881);
        await using var client = new TorrentClient([seeder], new TorrentClientOptions { ListenEndPoints = [listenAt] }, store, time);
        await client.StartAsync(CancellationToken.None);
        var torrentA = await client.AddAsync(a, "seed", new TorrentAddOptions { SeedOnly = true });
        var torrentB = await client.AddAsync(b, "seed", new TorrentAddOptions { SeedOnly = true });
        var registeredA = RegisteredOn(torrentA);
        var registeredB = RegisteredOn(torrentB);

        // Torrent A busy: another thread holds its lock (the session's own; no seam in the engine for this).
        var gate = (Lock)typeof(TorrentSession).GetField("_gate", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(torrentA.Session)!;
        using var release = new ManualResetEventSlim();
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var holder = new Thread(() =>
        {
            lock (gate)
            {
                held.SetResult();
                release.Wait();
            }
        })
        {
            IsBackground = true,
        };
        holder.Start();
        IStreamConnection peerA, peerB;
        try
        {
            await held.Task.WaitAsync(Deadline);
            // Two peers connect (the router accepts both), then each sends its plain handshake: A's first, B's next.
            peerA = await ConnectAsync(network, scheduler, listenAt);
            peerB = await ConnectAsync(network, scheduler, listenAt);
            // Sending and delivering them runs the router's path on the sender's and the scheduler's thread: handing
            // A's connection over must not wait for A's lock, so B's is read and B registers its peer while A is still
            // busy. On a thread of its own: a path that blocks would otherwise block the test.
            var pump = Task.Run(async () =>
            {
                await peerA.Stream.WriteAsync(Handshake(a.InfoHash));
                await peerB.Stream.WriteAsync(Handshake(b.InfoHash));
                scheduler.RunUntilIdle();
            });
            await registeredB.Task.WaitAsync(Deadline);
            await pump.WaitAsync(Deadline);
            Assert.False(registeredA.Task.IsCompleted);
        }
        finally
        {
            release.Set();
            holder.Join();
        }

        // A, no longer busy, registers its peer too (its handshake was adopted meanwhile, not dropped).
        await registeredA.Task.WaitAsync(Deadline);
        Assert.Equal(1, torrentA.GetStats().Connections);
        Assert.Equal(1, torrentB.GetStats().Connections);
        await peerA.DisposeAsync();
        await peerB.DisposeAsync();
    }

    private static async Task<IStreamConnection> ConnectAsync(VirtualStreamNetwork network, DeterministicScheduler scheduler, IPEndPoint to)
    {
        var connecting = network.AddEndpoint().ConnectAsync(to, CancellationToken.None).AsTask();
        Assert.True(scheduler.RunUntil(() => connecting.IsCompleted, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(5)), "the connect did not complete");
        return await connecting;
    }
}
