using System.Net;
using Peerway.Net;

namespace Peerway.Node;

/// <summary>Wraps a datagram socket and counts what goes through it (for demo and benchmark summaries).</summary>
public sealed class CountingDatagramSocket : IDatagramSocket
{
    private readonly IDatagramSocket _inner;
    private long _sent;
    private long _received;
    private long _bytesSent;

    public CountingDatagramSocket(IDatagramSocket inner) => _inner = inner ?? throw new ArgumentNullException(nameof(inner));

    public IPEndPoint LocalEndPoint => _inner.LocalEndPoint;

    public long DatagramsSent => Interlocked.Read(ref _sent);

    public long DatagramsReceived => Interlocked.Read(ref _received);

    public long BytesSent => Interlocked.Read(ref _bytesSent);

    public void Start(DatagramHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _inner.Start((datagram, remote) =>
        {
            Interlocked.Increment(ref _received);
            handler(datagram, remote);
        });
    }

    public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        Interlocked.Increment(ref _sent);
        Interlocked.Add(ref _bytesSent, datagram.Length);
        _inner.Send(datagram, remote);
    }

    public void Dispose() => _inner.Dispose();
}
