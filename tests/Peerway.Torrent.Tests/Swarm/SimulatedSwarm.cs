using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core;
using Peerway.Core.Bencoding;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.TestSupport;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// A swarm of real <see cref="TorrentClient"/>s with nothing real underneath: a <see cref="VirtualStreamNetwork"/>
/// (each peer's upload and download rate and every link's latency emulated in virtual time), memory storage, a
/// <see cref="FakeTimeProvider"/>, and the <see cref="DeterministicScheduler"/> as every engine's executor (<see cref="TorrentClientOptions.Scheduler"/>).
/// Everything runs on the test's thread inside the scheduler's run methods, and every wait is bounded in virtual time.
/// Engine events that fire on any other thread are counted (<see cref="OffThreadEvents"/>): an engine that escapes to the
/// thread pool makes that count non-zero (and the run non-deterministic).
/// </summary>
internal sealed class SimulatedSwarm : IDisposable
{
    /// <summary>Virtual time moved per step while nothing is due (the engine's tick is 100 ms).</summary>
    public static readonly TimeSpan Step = TimeSpan.FromMilliseconds(5);

    private readonly List<(TorrentClient Client, MemoryStorageFactory Storage)> _clients = [];
    private long _offThread;
    private int _nextPeerId;

    public SimulatedSwarm(VirtualStreamNetworkOptions? network = null)
    {
        Time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Scheduler = new DeterministicScheduler(Time);
        Network = new VirtualStreamNetwork(Scheduler, Time, network);
        Started = Time.GetUtcNow();
    }

    public FakeTimeProvider Time { get; }

    public DeterministicScheduler Scheduler { get; }

    public VirtualStreamNetwork Network { get; }

    /// <summary>When the swarm was made (virtual).</summary>
    public DateTimeOffset Started { get; }

    /// <summary>Virtual time since the swarm was made.</summary>
    public TimeSpan Elapsed => Time.GetUtcNow() - Started;

    /// <summary>Engine events (pieces verified, peers registered) raised off the scheduler's thread.</summary>
    public long OffThreadEvents => Interlocked.Read(ref _offThread);

    /// <summary>
    /// Runs <paramref name="test"/> on a thread of its own with a 256 MiB stack. Continuations run inline on the
    /// scheduler's thread, so one delivery can complete a long chain of them (closing a connection ends the other side's
    /// loop, which unregisters it, which refills the others ...); when the stack runs low the runtime stops inlining
    /// and posts the next continuation to the thread pool, off the scheduler. A deep stack keeps every run on one thread.
    /// </summary>
    public static void OnDeepStack(Action test)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                test();
            }
            catch (Exception ex)
            {
                failure = ex;
            }
        }, 256 * 1024 * 1024);
        thread.Start();
        thread.Join();
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
    }

    /// <summary>A single-file torrent of <paramref name="content"/>, made in memory.</summary>
    public static TorrentMetainfo MakeTorrent(byte[] content, int pieceLength)
    {
        var pieces = new byte[(content.Length + pieceLength - 1) / pieceLength * 20];
        for (var i = 0; i * pieceLength < content.Length; i++)
        {
            SHA1.HashData(content.AsSpan(i * pieceLength, Math.Min(pieceLength, content.Length - (i * pieceLength))), pieces.AsSpan(i * 20, 20));
        }

        var info = new BDictionary
        {
            ["length"] = new BInteger(content.Length),
            ["name"] = new BString("payload.bin"),
            ["piece length"] = new BInteger(pieceLength),
            ["pieces"] = new BString(pieces),
        };
        var torrent = Bencode.Encode(new BDictionary { ["info"] = info });
        Assert.True(MetainfoParser.TryParse(torrent, out var meta, out var error), error.ToString());
        return meta!;
    }

    /// <summary>Adds a started client on a new endpoint with <paramref name="link"/>'s rates.</summary>
    public Peer AddPeer(VirtualEndpointOptions? link = null, TorrentClientOptions? options = null)
    {
        var endpoint = Network.AddEndpoint(link);
        var storage = new MemoryStorageFactory();
        var id = new byte[NodeId.Length];
        "-PW0001-"u8.CopyTo(id);
        BitConverter.TryWriteBytes(id.AsSpan(8), ++_nextPeerId);
        var client = new TorrentClient([endpoint], (options ?? new TorrentClientOptions { Encryption = EncryptionPolicy.Off }) with
        {
            ListenEndPoints = [new IPEndPoint(endpoint.Address, 6881)],
            Scheduler = Scheduler,
            PeerId = new NodeId(id),
        }, storage, Time);
        _clients.Add((client, storage));
        Run(async () =>
        {
            await client.StartAsync(CancellationToken.None);
            return true;
        });
        return new Peer(this, client, storage, new IPEndPoint(endpoint.Address, 6881));
    }

    /// <summary>Starts <paramref name="start"/> on the scheduler and runs until it ends (at most a virtual minute).</summary>
    public T Run<T>(Func<Task<T>> start) => Scheduler.Await(Scheduler.RunAsync(start, TimeSpan.FromMinutes(1), Step));

    /// <summary>Runs the swarm until <paramref name="done"/> holds; false when it did not within <paramref name="max"/> of virtual time.</summary>
    public bool RunUntil(Func<bool> done, TimeSpan max) => Scheduler.RunUntil(done, Step, max);

    internal void Watch(TorrentHandle handle)
    {
        var session = handle.Session!;
        session.PieceVerified += _ => CountThread();
        session.PeerConnected += _ => CountThread();
    }

    private void CountThread()
    {
        if (!Scheduler.OnRunnerThread) Interlocked.Increment(ref _offThread);
    }

    /// <summary>Disposes every client, on the scheduler.</summary>
    /// <remarks>
    /// Known gap (issue 14): a client's disposal can still hand one continuation to the thread pool (not found yet; the
    /// swarm phase before it is deterministic, see The_same_swarm_run_twice_gives_the_same_run). So a disposal not done
    /// after a virtual minute is given, bounded, the real time that continuation needs, running deliveries meanwhile.
    /// </remarks>
    public void Dispose()
    {
        foreach (var (client, _) in _clients)
        {
            Task? disposing = null;
            DeterministicScheduler.RunInline(() => disposing = client.DisposeAsync().AsTask());
            if (RunUntil(() => disposing!.IsCompleted, TimeSpan.FromMinutes(1))) continue;
            for (var i = 0; i < 1000 && !disposing!.IsCompleted; i++)
            {
                ((IAsyncResult)disposing).AsyncWaitHandle.WaitOne(10);
                Scheduler.RunUntilIdle();
            }

            Assert.True(disposing!.IsCompleted, "a client's disposal did not complete");
        }
    }

    /// <summary>One client of the swarm, its storage and where it listens.</summary>
    internal sealed record Peer(SimulatedSwarm Swarm, TorrentClient Client, MemoryStorageFactory Storage, IPEndPoint EndPoint)
    {
        /// <summary>Seeds <paramref name="content"/> of <paramref name="meta"/> from memory.</summary>
        public TorrentHandle Seed(TorrentMetainfo meta, byte[] content, TorrentAddOptions? options = null)
        {
            Storage.Add(meta.Info, content);
            return Add(meta, (options ?? new TorrentAddOptions()) with { SeedOnly = true });
        }

        public TorrentHandle Add(TorrentMetainfo meta, TorrentAddOptions? options = null)
        {
            var handle = Swarm.Run(() => Client.AddAsync(meta, "swarm", options ?? new TorrentAddOptions()));
            Swarm.Watch(handle);
            return handle;
        }

        public TorrentHandle Add(MagnetLink magnet, TorrentAddOptions? options = null)
        {
            var handle = Swarm.Run(() => Client.AddAsync(magnet, "swarm", options ?? new TorrentAddOptions()));
            Swarm.Watch(handle);
            return handle;
        }

        /// <summary>What this peer stores of <paramref name="meta"/>.</summary>
        public byte[] Content(TorrentMetainfo meta) => Storage.Get(meta.InfoHash)!.ToArray();
    }
}
