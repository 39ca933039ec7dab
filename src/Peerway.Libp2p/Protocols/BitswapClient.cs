using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core.Multiformats;

namespace Peerway.Libp2p.Protocols;

/// <summary>Limits of a <see cref="BitswapClient"/>.</summary>
public sealed record BitswapClientOptions
{
    /// <summary>Want-blocks outstanding at one peer; further wants go to other peers or wait.</summary>
    public int MaxWantsPerPeer { get; init; } = 128;

    /// <summary>Time a peer has to answer a want (block or DONT_HAVE) before the want is also sent to another peer.</summary>
    public TimeSpan PeerTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Blocks a peer may send that we did not want (or that do not hash to a wanted CID) before it is dropped.</summary>
    public int MaxUnwantedBlocks { get; init; } = 32;

    /// <summary>Checks the options.</summary>
    public BitswapClientOptions Validated()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxWantsPerPeer, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(PeerTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxUnwantedBlocks, 0);
        return this;
    }
}

/// <summary>What a <see cref="BitswapClient"/> has fetched from one peer.</summary>
/// <param name="Peer">The peer.</param>
/// <param name="Blocks">Wanted blocks it sent first.</param>
/// <param name="Bytes">Their bytes.</param>
/// <param name="Unwanted">Blocks it sent that no want named (a block whose bytes do not hash to its CID is one).</param>
public sealed record BitswapPeerStats(PeerId Peer, long Blocks, long Bytes, int Unwanted);

/// <summary>
/// The fetching half of Bitswap 1.2.0 (ipfs/specs bitswap-protocol.md): each wanted CID is asked of one connected peer at
/// a time as a want-block with send-dont-have — the peer with the fewest outstanding wants that has not said DONT_HAVE
/// for it — so a DAG's blocks are spread over every peer at once. A DONT_HAVE, a closed connection or
/// <see cref="BitswapClientOptions.PeerTimeout"/> without an answer moves the want to the next peer; a want no peer has
/// ends as null. Blocks arrive on streams the peers open (through the host's <see cref="BitswapServer"/>, which owns the
/// inbound protocol) and are matched by the CID rebuilt from their own bytes, so a block that does not hash to a wanted
/// CID is never handed out: it counts against its sender, which is dropped after
/// <see cref="BitswapClientOptions.MaxUnwantedBlocks"/>. Wants leave on one stream per peer, batched per message; a
/// cancelled or answered want is cancelled at the peers still asked.
/// </summary>
public sealed class BitswapClient : IAsyncDisposable
{
    private readonly BitswapClientOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<Cid, Want> _wants = [];
    private readonly Dictionary<PeerId, Peer> _peers = [];
    private readonly CancellationTokenSource _cts = new();
    private readonly List<Task> _tasks = [];
    private bool _disposed;

    /// <summary>Creates the client; <paramref name="server"/> hands it the blocks and presences peers send.</summary>
    public BitswapClient(BitswapServer server, BitswapClientOptions? options = null, TimeProvider? time = null, ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        _options = (options ?? new BitswapClientOptions()).Validated();
        _time = time ?? TimeProvider.System;
        _log = log ?? NullLogger.Instance;
        server.Received += OnReceived;
    }

    /// <summary>A block no want named arrived (raised under the client's lock: handlers must not call back in).</summary>
    internal event Action<PeerId, Cid>? UnwantedBlock;

    /// <summary>What each peer has sent so far.</summary>
    public IReadOnlyList<BitswapPeerStats> PeerStats
    {
        get
        {
            lock (_gate) return [.. _peers.Values.Select(p => new BitswapPeerStats(p.Connection.RemotePeer, p.Blocks, p.Bytes, p.Unwanted))];
        }
    }

    /// <summary>
    /// Fetches the block <paramref name="cid"/> from <paramref name="peers"/>; returns its verified bytes, or null when
    /// every peer said DONT_HAVE or went away.
    /// </summary>
    public async Task<byte[]?> GetAsync(Cid cid, IReadOnlyCollection<Libp2pConnection> peers, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(cid);
        ArgumentNullException.ThrowIfNull(peers);
        Want want;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var connection in peers) AddPeer(connection);
            if (!_wants.TryGetValue(cid, out want!))
            {
                want = new Want(cid, [.. peers.Select(p => p.RemotePeer)]);
                _wants[cid] = want;
                AskNextLocked(want);
            }
            else
            {
                foreach (var p in peers) want.Candidates.Add(p.RemotePeer);
            }

            want.Waiters++;
        }

        try
        {
            return await want.Result.Task.WaitAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                if (--want.Waiters == 0 && !want.Result.Task.IsCompleted)
                {
                    // Nobody waits any more: withdraw the want everywhere it was sent.
                    want.Result.TrySetResult(null);
                    RetireLocked(want);
                }
            }
        }
    }

    /// <summary>Raised by <see cref="BitswapServer"/> for every decoded message with blocks or presences.</summary>
    private void OnReceived(BitswapMessage message, Libp2pConnection from)
    {
        Libp2pConnection? drop = null;
        lock (_gate)
        {
            if (_disposed) return;
            var peer = AddPeer(from);
            foreach (var (cid, data) in message.Blocks)
            {
                // The CID was rebuilt from the bytes and the payload's prefix: a match means the bytes are the block.
                if (_wants.TryGetValue(cid, out var want) && !want.Result.Task.IsCompleted)
                {
                    peer.Blocks++;
                    peer.Bytes += data.Length;
                    want.Result.TrySetResult(data);
                    RetireLocked(want, answeredBy: from.RemotePeer);
                }
                else if (!WasAskedRecently(cid, peer))
                {
                    UnwantedBlock?.Invoke(from.RemotePeer, cid);
                    if (++peer.Unwanted > _options.MaxUnwantedBlocks && !peer.Dropped)
                    {
                        peer.Dropped = true;
                        drop = from;
                    }
                }
            }

            foreach (var (cid, have) in message.Presences)
            {
                if (have || !_wants.TryGetValue(cid, out var want) || !want.AskedOf.Remove(from.RemotePeer)) continue;
                want.Candidates.Remove(from.RemotePeer);
                peer.Outstanding--;
                AskNextLocked(want);
                DrainLocked(peer);
            }
        }

        if (drop is not null)
        {
            _log.LogWarning("bitswap: {Peer} sent more than {Max} blocks nobody wanted; dropping it", drop.RemotePeer, _options.MaxUnwantedBlocks);
            Track(drop.DisposeAsync().AsTask());
        }
    }

    /// <summary>A block of a want answered a moment ago by another peer (asked after a timeout) is not held against it.</summary>
    private static bool WasAskedRecently(Cid cid, Peer peer) => peer.RecentlyAnswered.Contains(cid);

    private Peer AddPeer(Libp2pConnection connection)
    {
        if (_peers.TryGetValue(connection.RemotePeer, out var peer) && peer.Connection == connection) return peer;
        peer = new Peer(connection, Channel.CreateUnbounded<WantEntry>(new UnboundedChannelOptions { SingleReader = true }));
        _peers[connection.RemotePeer] = peer;
        Track(SendLoopAsync(peer, _cts.Token));
        Track(WatchAsync(peer));
        return peer;
    }

    /// <summary>Sends the want to the candidate peer with the fewest outstanding wants; with none left it ends as null.</summary>
    private void AskNextLocked(Want want)
    {
        Peer? best = null;
        foreach (var id in want.Candidates)
        {
            if (want.AskedOf.Contains(id) || !_peers.TryGetValue(id, out var p) || p.Closed || p.Dropped) continue;
            if (best is null || p.Outstanding < best.Outstanding) best = p;
        }

        if (best is null)
        {
            if (want.AskedOf.Count == 0)
            {
                want.Result.TrySetResult(null);
                RetireLocked(want);
            }

            return;
        }

        if (best.Outstanding >= _options.MaxWantsPerPeer)
        {
            best.Waiting.Enqueue(want);
            return;
        }

        want.AskedOf.Add(best.Connection.RemotePeer);
        best.Outstanding++;
        best.Outbox.Writer.TryWrite(new WantEntry(want.Cid, 1, Cancel: false, WantHave: false, SendDontHave: true));
        want.Timer?.Dispose();
        want.Timer = _time.CreateTimer(_ => OnTimeout(want), null, _options.PeerTimeout, Timeout.InfiniteTimeSpan);
    }

    private void OnTimeout(Want want)
    {
        lock (_gate)
        {
            if (_disposed || want.Result.Task.IsCompleted) return;
            // Keep the slow peer asked (its block is still welcome) and ask one more.
            AskNextLocked(want);
        }
    }

    /// <summary>
    /// Removes an answered or abandoned want and cancels it at the peers still asked, except the one whose block answered
    /// it: a server drops a want-block from its ledger once it has sent the block (boxo's engine on MessageSent; Helia's
    /// ledger marks it sent and never resends it), so a cancel there is a wasted message, and every message Helia receives
    /// starts one more of its one-at-a-time send operations (@helia/bitswap ledger.js queueSendOperation).
    /// </summary>
    private void RetireLocked(Want want, PeerId? answeredBy = null)
    {
        _wants.Remove(want.Cid);
        want.Timer?.Dispose();
        foreach (var id in want.AskedOf)
        {
            if (!_peers.TryGetValue(id, out var p)) continue;
            p.Outstanding--;
            p.RecentlyAnswered.Add(want.Cid);
            if (p.RecentlyAnswered.Count > 4 * _options.MaxWantsPerPeer) p.RecentlyAnswered.Clear();
            if (!p.Closed && !id.Equals(answeredBy)) p.Outbox.Writer.TryWrite(new WantEntry(want.Cid, 1, Cancel: true, WantHave: false, SendDontHave: false));
        }

        var asked = want.AskedOf.ToList();
        want.AskedOf.Clear();
        foreach (var id in asked)
        {
            if (_peers.TryGetValue(id, out var p)) DrainLocked(p);
        }
    }

    /// <summary>Wants that waited for room at <paramref name="peer"/> go out as its outstanding wants are answered.</summary>
    private void DrainLocked(Peer peer)
    {
        while (peer.Outstanding < _options.MaxWantsPerPeer && peer.Waiting.TryDequeue(out var next))
        {
            if (_wants.ContainsKey(next.Cid) && !next.Result.Task.IsCompleted && next.AskedOf.Count == 0) AskNextLocked(next);
        }
    }

    /// <summary>One stream per peer for our wantlist; every entry waiting is sent in one message.</summary>
    private async Task SendLoopAsync(Peer peer, CancellationToken ct)
    {
        Stream? stream = null;
        try
        {
            while (await peer.Outbox.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                var message = new BitswapMessage();
                while (message.Wants.Count < BitswapMessage.MaxEntries && peer.Outbox.Reader.TryRead(out var entry)) message.Wants.Add(entry);
                stream ??= await peer.Connection.OpenStreamAsync([BitswapMessage.Protocol120, BitswapMessage.Protocol110], ct).ConfigureAwait(false);
                await LengthPrefixed.WriteAsync(stream, message.Encode(), ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Disposed.
        }
        catch (Exception ex) when (ex is IOException or Libp2pProtocolException or ObjectDisposedException or InvalidOperationException)
        {
            _log.LogDebug("bitswap: cannot send wants to {Peer}: {Error}", peer.Connection.RemotePeer, ex.Message);
            await peer.Connection.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            if (stream is not null) await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>When a peer's connection closes, its wants move on to other peers.</summary>
    private async Task WatchAsync(Peer peer)
    {
        await peer.Connection.Closed.WaitAsync(_cts.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        lock (_gate)
        {
            peer.Closed = true;
            peer.Outbox.Writer.TryComplete();
            if (_disposed) return;
            foreach (var want in _wants.Values.ToList())
            {
                if (want.AskedOf.Remove(peer.Connection.RemotePeer))
                {
                    want.Candidates.Remove(peer.Connection.RemotePeer);
                    AskNextLocked(want);
                }
            }

            while (peer.Waiting.TryDequeue(out var w))
            {
                w.Candidates.Remove(peer.Connection.RemotePeer);
                if (_wants.ContainsKey(w.Cid)) AskNextLocked(w);
            }
        }
    }

    private void Track(Task task)
    {
        lock (_tasks)
        {
            _tasks.RemoveAll(t => t.IsCompleted);
            _tasks.Add(task);
        }
    }

    /// <summary>Ends every want (as null) and awaits the tasks the client started; the peers stay connected.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var want in _wants.Values)
            {
                want.Timer?.Dispose();
                want.Result.TrySetResult(null);
            }

            _wants.Clear();
            foreach (var p in _peers.Values) p.Outbox.Writer.TryComplete();
        }

        await _cts.CancelAsync().ConfigureAwait(false);
        Task[] tasks;
        lock (_tasks) tasks = [.. _tasks];
        await Task.WhenAll(tasks).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _cts.Dispose();
    }

    private sealed class Want(Cid cid, HashSet<PeerId> candidates)
    {
        public Cid Cid { get; } = cid;

        public HashSet<PeerId> Candidates { get; } = candidates;

        public HashSet<PeerId> AskedOf { get; } = [];

        public TaskCompletionSource<byte[]?> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Waiters { get; set; }

        public ITimer? Timer { get; set; }
    }

    private sealed class Peer(Libp2pConnection connection, Channel<WantEntry> outbox)
    {
        public Libp2pConnection Connection { get; } = connection;

        public Channel<WantEntry> Outbox { get; } = outbox;

        public Queue<Want> Waiting { get; } = new();

        public HashSet<Cid> RecentlyAnswered { get; } = [];

        public int Outstanding { get; set; }

        public long Blocks { get; set; }

        public long Bytes { get; set; }

        public int Unwanted { get; set; }

        public bool Closed { get; set; }

        public bool Dropped { get; set; }
    }
}
