using System.Net;
using Peerway.Net;
using Peerway.WebRtc;
using Peerway.WebRtc.DataChannels;

namespace Peerway.WebTorrent;

/// <summary>
/// One WebRTC data channel as a byte stream (the BitTorrent wire over WebRTC, as WebTorrent sends it: the stream cut into
/// messages anywhere, read back as one stream). Writes wait while the channel's buffered amount is at its threshold
/// (back-pressure through the SCTP send window). Disposing closes the channel and the peer connection under it.
/// </summary>
internal sealed class DataChannelConnection : IStreamConnection
{
    private readonly RtcPeerConnection _pc;
    private readonly DataChannelStream _stream;
    private int _disposed;

    public DataChannelConnection(RtcPeerConnection pc, RtcDataChannel channel, IPEndPoint remote, IPEndPoint local)
    {
        _pc = pc;
        _stream = new DataChannelStream(channel);
        RemoteEndPoint = remote;
        LocalEndPoint = local;
    }

    public Stream Stream => _stream;

    public IPEndPoint RemoteEndPoint { get; }

    public IPEndPoint LocalEndPoint { get; }

    public StreamTransportKind Kind => StreamTransportKind.WebRtc;

    public void Abort() => _stream.Channel.Close();

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stream.Channel.Close();
        await _stream.DisposeAsync().ConfigureAwait(false);
        await _pc.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>A data channel's messages as a stream: reads return the bytes of one message at a time (0 once closed).</summary>
internal sealed class DataChannelStream(RtcDataChannel channel) : Stream
{
    /// <summary>Largest message we send: 16 KiB goes through every browser's SCTP stack unfragmented by the application
    /// (WebRTC's interoperable message size, RFC 8831 §6.6 leaves larger ones to a=max-message-size).</summary>
    internal const int MaxChunk = 16 * 1024;

    private ReadOnlyMemory<byte> _leftover;

    public RtcDataChannel Channel { get; } = channel;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_leftover.IsEmpty)
        {
            var message = await Channel.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            if (message is not { } m) return 0;
            _leftover = m.Data;
        }

        var n = Math.Min(buffer.Length, _leftover.Length);
        _leftover[..n].CopyTo(buffer);
        _leftover = _leftover[n..];
        return n;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            for (var offset = 0; offset < buffer.Length; offset += MaxChunk)
            {
                await Channel.SendAsync(buffer.Slice(offset, Math.Min(MaxChunk, buffer.Length - offset)), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException ex)
        {
            // The channel or its connection closed: a reset, as IStreamConnection says.
            throw new IOException(ex.Message, ex);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous reads only");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous writes only");

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
