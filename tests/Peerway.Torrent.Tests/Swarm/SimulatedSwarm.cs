using System.Net;
using System.Security.Cryptography;
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
/// <see cref="VirtualTimeProvider"/> (timers and network deliveries in one queue, each run at its due time), and the
/// <see cref="DeterministicScheduler"/> as every engine's executor (<see cref="TorrentClientOptions.Scheduler"/>).
/// Everything runs on the test's thread inside the scheduler's run methods, and every wait is bounded in virtual time.
/// Engine events that fire on any other thread are counted (<see cref="OffThreadEvents"/>): an engine that escapes to the
/// thread pool makes that count non-zero (and the run non-deterministic).
/// </summary>
internal sealed class SimulatedSwarm : IDisposable
{
    /// <summary>How often (virtual) a run checks whether it is done; events within a step still run at their due times.</summary>
    public static readonly TimeSpan Step = TimeSpan.FromMilliseconds(5);

    /// <summary>The default bound of <see cref="Wait(Func{bool}, string, TimeSpan?)"/>, in virtual time.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromMinutes(5);

    private readonly List<(TorrentClient Client, MemoryStorageFactory Storage)> _clients = [];
    private readonly List<IAsyncDisposable> _owned = [];
    private long _offThread;
    private int _nextPeerId;

    public SimulatedSwarm(VirtualStreamNetworkOptions? network = null)
    {
        Time = new VirtualTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Scheduler = new DeterministicScheduler(Time);
        Network = new VirtualStreamNetwork(Scheduler, Time, network);
        Started = Time.GetUtcNow();
    }

    public VirtualTimeProvider Time { get; }

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

    /// <summary>Adds a started client on a new endpoint with <paramref name="link"/>'s rates; its storage is in memory
    /// unless <paramref name="storage"/> is given (then <see cref="Peer.Storage"/> is unused).</summary>
    public Peer AddPeer(VirtualEndpointOptions? link = null, TorrentClientOptions? options = null, ITorrentStorageFactory? storage = null)
    {
        var endpoint = Network.AddEndpoint(link);
        var memory = new MemoryStorageFactory();
        var id = new byte[NodeId.Length];
        "-PW0001-"u8.CopyTo(id);
        BitConverter.TryWriteBytes(id.AsSpan(8), ++_nextPeerId);
        var client = new TorrentClient([endpoint], (options ?? new TorrentClientOptions { Encryption = EncryptionPolicy.Off }) with
        {
            ListenEndPoints = [new IPEndPoint(endpoint.Address, 6881)],
            Scheduler = Scheduler,
            PeerId = new NodeId(id),
        }, storage ?? memory, Time);
        _clients.Add((client, memory));
        Run(async () =>
        {
            await client.StartAsync(CancellationToken.None);
            return true;
        });
        return new Peer(this, client, memory, new IPEndPoint(endpoint.Address, 6881));
    }

    /// <summary>Starts <paramref name="start"/> on the scheduler and runs until it ends (at most a virtual minute).</summary>
    public T Run<T>(Func<Task<T>> start) => Scheduler.Await(Scheduler.RunAsync(start, TimeSpan.FromMinutes(1), Step));

    /// <summary>Starts <paramref name="start"/> on the scheduler and runs until it ends (at most a virtual minute).</summary>
    public void Run(Func<Task> start) => Run(async () =>
    {
        await start();
        return true;
    });

    /// <summary>Runs the swarm until <paramref name="done"/> holds; false when it did not within <paramref name="max"/> of virtual time.</summary>
    public bool RunUntil(Func<bool> done, TimeSpan max) => Scheduler.RunUntil(done, Step, max);

    /// <summary>Runs the swarm until <paramref name="done"/> holds; fails the test with <paramref name="what"/> when it did
    /// not within <paramref name="max"/> (<see cref="Deadline"/>) of virtual time.</summary>
    public void Wait(Func<bool> done, string what, TimeSpan? max = null) => Assert.True(RunUntil(done, max ?? Deadline), what);

    /// <summary>Runs the swarm until <paramref name="task"/> has ended (see <see cref="Wait(Func{bool}, string, TimeSpan?)"/>).</summary>
    public void Wait(Task task, string what, TimeSpan? max = null) => Wait(() => task.IsCompleted, what, max);

    /// <summary>Runs the swarm for <paramref name="span"/> of virtual time.</summary>
    public void RunFor(TimeSpan span) => RunUntil(static () => false, span);

    /// <summary>Disposes <paramref name="owned"/> (a test double on the network) on the scheduler before the clients.</summary>
    public T Own<T>(T owned)
        where T : IAsyncDisposable
    {
        _owned.Add(owned);
        return owned;
    }

    /// <summary>A <see cref="FakePeer"/> listening on a new endpoint of the network.</summary>
    public FakePeer Fake(TorrentMetainfo meta, byte[] content, FakePeerMode mode)
    {
        var endpoint = Network.AddEndpoint();
        return Own(Run(() => FakePeer.StartAsync(endpoint, new IPEndPoint(endpoint.Address, 6881), meta.Info, content, mode)));
    }

    /// <summary>A raw <see cref="WireClient"/> connected to <paramref name="target"/> from <paramref name="from"/> (a new endpoint by default).</summary>
    public WireClient Wire(IPEndPoint target, VirtualStreamEndpoint? from = null)
    {
        var endpoint = from ?? Network.AddEndpoint();
        return Own(Run(() => WireClient.ConnectAsync(endpoint, target)));
    }

    /// <summary>Starts <paramref name="start"/> without running the swarm: it goes on when the swarm runs.</summary>
    public static Task<T> StartAsync<T>(Func<Task<T>> start)
    {
        Task<T>? task = null;
        DeterministicScheduler.RunInline(() => task = start());
        return task!;
    }

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

    /// <summary>
    /// Disposes what the test made on the network, then every client, on the scheduler, and checks that no disposal
    /// left it: each must end within a virtual minute, on the scheduler's thread. A continuation handed to the thread
    /// pool instead (issue 14: the session's wait for its incoming connections did) finishes the disposal on a pool
    /// thread, and this fails the test.
    /// </summary>
    public void Dispose()
    {
        for (var i = _owned.Count - 1; i >= 0; i--) DisposeOnScheduler(_owned[i]);
        foreach (var (client, _) in _clients) DisposeOnScheduler(client);
        Assert.Equal(0, OffThreadEvents);
    }

    private void DisposeOnScheduler(IAsyncDisposable disposable)
    {
        // The line after the await runs where the disposal's last step ran: the scheduler's thread unless a
        // continuation left it. Run fails the test if the disposal is not done within a virtual minute.
        var endedOffThread = Run(async () =>
        {
            await disposable.DisposeAsync();
            return !Scheduler.OnRunnerThread;
        });
        Assert.False(endedOffThread, $"disposing a {disposable.GetType().Name} ended on another thread (the thread pool), not the scheduler's");
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
