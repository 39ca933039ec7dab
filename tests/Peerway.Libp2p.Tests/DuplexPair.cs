using System.IO.Pipelines;

namespace Peerway.Libp2p.Tests;

/// <summary>Two connected in-memory streams (one pipe each way), standing in for a TCP connection.</summary>
internal sealed class DuplexPair
{
    public DuplexPair()
    {
        var ab = new Pipe();
        var ba = new Pipe();
        A = new Side(ba.Reader.AsStream(), ab.Writer.AsStream());
        B = new Side(ab.Reader.AsStream(), ba.Writer.AsStream());
    }

    public Stream A { get; }

    public Stream B { get; }

    private sealed class Side(Stream reader, Stream writer) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => reader.ReadAsync(buffer, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => writer.WriteAsync(buffer, cancellationToken);

        public override Task FlushAsync(CancellationToken cancellationToken) => writer.FlushAsync(cancellationToken);

        public override void Flush() => writer.Flush();

        public override int Read(byte[] buffer, int offset, int count) => reader.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count) => writer.Write(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                writer.Dispose();
                reader.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
