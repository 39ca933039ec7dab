using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core.Multiformats;

namespace Peerway.Libp2p.Protocols;

/// <summary>Where a Bitswap server finds blocks: the verified block, or null when it does not hold it.</summary>
public delegate byte[]? BitswapBlockSource(Cid cid);

/// <summary>Limits of the Bitswap server, per peer.</summary>
public sealed record BitswapServerOptions
{
    /// <summary>Block bytes in one response message (Helia and go-bitswap accept up to 4 MiB).</summary>
    public int MaxResponseBytes { get; init; } = 2 * 1024 * 1024;

    /// <summary>Wanted blocks a peer may have outstanding at once; further wants are answered DONT_HAVE when asked.</summary>
    public int MaxWantsPerPeer { get; init; } = 4096;

    /// <summary>
    /// An answer stream idle for this long is closed and the next answer opens a new one: Helia aborts an inbound Bitswap
    /// stream after 10 s without a message (@helia/bitswap's messageReceiveTimeout) and js-libp2p's Yamux drops frames
    /// for a stream it no longer knows, so a message written into such a stream would be lost without an error.
    /// </summary>
    public TimeSpan AnswerStreamIdle { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Serves blocks over Bitswap 1.2.0 (and 1.1.0/1.0.0): a peer's wantlist messages arrive on streams it opens; answers
/// (blocks as payloads with their CID prefix, HAVE / DONT_HAVE presences) go out on a stream we open to it, as
/// go-bitswap and Helia do (each side writes only on its own streams). As go-bitswap's message sender, that stream is
/// kept for the connection's life and carries every answer in turn: one protocol negotiation per peer instead of a
/// round trip per message, and a stream whose Yamux window grows with the transfer. Blocks leave in messages of at
/// most <see cref="BitswapServerOptions.MaxResponseBytes"/>.
/// </summary>
public sealed class BitswapServer
{
    private readonly BitswapBlockSource _blocks;
    private readonly BitswapServerOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly ConditionalWeakTable<Libp2pConnection, ReplyStream> _replies = [];

    /// <summary>Registers the server's handlers on <paramref name="host"/>.</summary>
    public BitswapServer(Libp2pHost host, BitswapBlockSource blocks, BitswapServerOptions? options = null, ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        _blocks = blocks ?? throw new ArgumentNullException(nameof(blocks));
        _options = options ?? new BitswapServerOptions();
        _log = log ?? NullLogger.Instance;
        _time = host.Time;
        foreach (var p in new[] { BitswapMessage.Protocol120, BitswapMessage.Protocol110, BitswapMessage.Protocol100, BitswapMessage.Protocol })
        {
            host.Handle(p, ServeAsync);
        }
    }

    /// <summary>
    /// Blocks and presences a peer sent (answers to our wants arrive on streams the peer opens, the same inbound protocol
    /// this server handles): the host's <see cref="BitswapClient"/> takes them. Raised on the stream's task.
    /// </summary>
    internal event Action<BitswapMessage, Libp2pConnection>? Received;

    /// <summary>Blocks sent so far.</summary>
    public long BlocksSent => Interlocked.Read(ref _blocksSent);

    private long _blocksSent;

    private async Task ServeAsync(Stream stream, Libp2pConnection connection, CancellationToken ct)
    {
        while (true)
        {
            (byte[] Buffer, int Length) raw;
            try
            {
                // Pooled: a fetch reads one ≤ 4 MiB message after another, and the decoded message copies out its blocks.
                raw = await LengthPrefixed.ReadPooledAsync(stream, BitswapMessage.MaxMessage, ct).ConfigureAwait(false);
            }
            catch (EndOfStreamException)
            {
                return; // the peer closed its stream: normal
            }

            Libp2pError error;
            BitswapMessage? message;
            try
            {
                error = BitswapMessage.TryDecode(raw.Buffer.AsSpan(0, raw.Length), out message);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(raw.Buffer);
            }

            if (error != Libp2pError.None)
            {
                _log.LogDebug("bitswap: a bad message from {Peer}: {Error}", connection.RemotePeer, error);
                throw new Libp2pProtocolException(error, $"bitswap: bad message ({error})");
            }

            if (message!.Blocks.Count > 0 || message.Presences.Count > 0) Received?.Invoke(message, connection);
            if (message.Wants.Count > 0) await AnswerAsync(message, connection, ct).ConfigureAwait(false);
        }
    }

    private async Task AnswerAsync(BitswapMessage wants, Libp2pConnection connection, CancellationToken ct)
    {
        var reply = new BitswapMessage();
        var bytes = 0;
        foreach (var want in wants.Wants.Take(_options.MaxWantsPerPeer))
        {
            if (want.Cancel) continue;
            var block = _blocks(want.Cid);
            if (block is null)
            {
                if (want.SendDontHave) reply.Presences.Add((want.Cid, false));
                continue;
            }

            if (want.WantHave)
            {
                reply.Presences.Add((want.Cid, true));
                continue;
            }

            if (bytes + block.Length > _options.MaxResponseBytes && reply.Blocks.Count > 0)
            {
                await SendAsync(reply, connection, ct).ConfigureAwait(false);
                reply = new BitswapMessage();
                bytes = 0;
            }

            reply.Blocks.Add((want.Cid, block));
            bytes += block.Length;
        }

        if (!reply.IsEmpty) await SendAsync(reply, connection, ct).ConfigureAwait(false);
    }

    private async Task SendAsync(BitswapMessage reply, Libp2pConnection connection, CancellationToken ct)
    {
        var encoded = reply.Encode();
        var sender = _replies.GetValue(connection, static _ => new ReplyStream());
        await sender.Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // One stream per peer for every answer; a stream the peer reset (or closed) is replaced once, and one idle past
            // AnswerStreamIdle is closed (FIN) before the peer's own receive timeout can abort it under a write.
            if (sender.Stream is { } idle && _time.GetElapsedTime(sender.LastWrite) > _options.AnswerStreamIdle)
            {
                sender.Stream = null;
                await idle.DisposeAsync().ConfigureAwait(false);
            }

            for (var attempt = 0; ; attempt++)
            {
                sender.Stream ??= await connection.OpenStreamAsync(BitswapMessage.Protocol120, ct).ConfigureAwait(false);
                try
                {
                    await LengthPrefixed.WriteAsync(sender.Stream, encoded, ct).ConfigureAwait(false);
                    sender.LastWrite = _time.GetTimestamp();
                    break;
                }
                catch (IOException ex) when (attempt == 0 && !connection.Closed.IsCompleted)
                {
                    _log.LogDebug("bitswap: the answer stream to {Peer} failed ({Message}); opening another", connection.RemotePeer, ex.Message);
                    var failed = sender.Stream;
                    sender.Stream = null;
                    await failed.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        finally
        {
            sender.Lock.Release();
        }

        Interlocked.Add(ref _blocksSent, reply.Blocks.Count);
    }

    /// <summary>The stream a peer's answers go out on, and the lock that keeps one message at a time on it.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Lock is a SemaphoreSlim whose wait handle is never requested, so it holds nothing to dispose; the stream ends with its connection.")]
    private sealed class ReplyStream
    {
        public SemaphoreSlim Lock { get; } = new(1, 1);

        public Stream? Stream { get; set; }

        public long LastWrite { get; set; }
    }
}
