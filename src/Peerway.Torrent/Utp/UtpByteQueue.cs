namespace Peerway.Torrent.Utp;

/// <summary>A growable ring of bytes (a connection's send or receive buffer); its owner bounds how much goes in.</summary>
internal sealed class UtpByteQueue
{
    private byte[] _buffer = new byte[4096];
    private int _head;

    public int Count { get; private set; }

    public void Enqueue(ReadOnlySpan<byte> data)
    {
        if (Count + data.Length > _buffer.Length)
        {
            var grown = new byte[Math.Max(_buffer.Length * 2, Count + data.Length)];
            Peek(grown.AsSpan(0, Count));
            _buffer = grown;
            _head = 0;
        }

        var tail = (_head + Count) % _buffer.Length;
        var first = Math.Min(data.Length, _buffer.Length - tail);
        data[..first].CopyTo(_buffer.AsSpan(tail));
        data[first..].CopyTo(_buffer);
        Count += data.Length;
    }

    /// <summary>Puts <paramref name="data"/> before what the queue holds (bytes taken back to be sent again).</summary>
    public void Prepend(ReadOnlySpan<byte> data)
    {
        var grown = new byte[Math.Max(_buffer.Length, Count + data.Length)];
        data.CopyTo(grown);
        Peek(grown.AsSpan(data.Length, Count));
        _buffer = grown;
        _head = 0;
        Count += data.Length;
    }

    /// <summary>Copies the first destination.Length bytes (at most <see cref="Count"/>) without removing them.</summary>
    public int Peek(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, Count);
        var first = Math.Min(n, _buffer.Length - _head);
        _buffer.AsSpan(_head, first).CopyTo(destination);
        _buffer.AsSpan(0, n - first).CopyTo(destination[first..]);
        return n;
    }

    public int Dequeue(Span<byte> destination)
    {
        var n = Peek(destination);
        _head = (_head + n) % _buffer.Length;
        Count -= n;
        if (Count == 0) _head = 0;
        return n;
    }
}
