using System.Buffers;
using System.IO.Pipelines;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

public sealed class OutgoingBatchTests
{
    private static readonly byte[] Key = "outgoing batch key"u8.ToArray();

    // PeerConnection's pump, without the socket: messages are written into a pipe (64-byte segments, so a batch spans
    // many), batches are taken from its head, encrypted from where the last one stopped, and "sent" a random number of
    // bytes at a time (partial sends leave an encrypted tail in the pipe); more messages arrive between sends. The bytes
    // on the wire must equal every message encrypted in turn by one RC4 stream, and no batch may exceed its bounds.
    [Fact]
    public async Task Batches_keep_the_keystream_aligned_with_per_message_encryption()
    {
        for (var seed = 0; seed < 300; seed++)
        {
            var random = new Random(seed);
            var encrypt = seed % 4 != 0;
            var messages = Enumerable.Range(0, random.Next(1, 40)).Select(_ =>
            {
                var m = new byte[random.Next(1, 300)];
                random.NextBytes(m);
                return m;
            }).ToList();
            Assert.True(await PumpMatchesAsync(messages, random.Next(1, 1000), random.Next(1, 9), encrypt, random), $"seed {seed}");
        }
    }

    // A seeder reads a run of requests for consecutive bytes of one piece with one scattered read: the run ends at
    // another piece, a gap, a repeat, or the byte budget (the first block always goes).
    [Fact]
    public void A_run_of_blocks_is_consecutive_bytes_of_one_piece_within_the_budget()
    {
        const int Block = 16384, Frame = 13 + Block;
        BlockRequest R(int piece, int begin, int length = Block) => new(piece, begin, length);
        var requests = new List<BlockRequest> { R(3, 0), R(3, Block), R(3, 2 * Block, 100), R(3, 2 * Block + 100), R(4, 0), R(4, 0), R(4, 2 * Block) };
        Assert.Equal((4, (3 * 13) + (3 * Block) + 100 + 13), PeerConnection.ConsecutiveRun(requests, 0, int.MaxValue));
        Assert.Equal((1, Frame), PeerConnection.ConsecutiveRun(requests, 4, int.MaxValue)); // the same block again
        Assert.Equal((1, Frame), PeerConnection.ConsecutiveRun(requests, 5, int.MaxValue)); // a gap
        Assert.Equal((2, 2 * Frame), PeerConnection.ConsecutiveRun(requests, 0, 2 * Frame + 112));
        Assert.Equal((1, Frame), PeerConnection.ConsecutiveRun(requests, 0, 1));
        var piece = Enumerable.Range(0, 16).Select(i => R(9, i * Block)).ToList();
        Assert.Equal((15, 15 * Frame), PeerConnection.ConsecutiveRun(piece, 0, PeerConnection.MaxBatchBytes));
    }

    private static async Task<bool> PumpMatchesAsync(List<byte[]> messages, int limit, int segmentsLimit, bool encrypt, Random random)
    {
        var expected = new List<byte>();
        var reference = Rc4.ForMse(Key);
        foreach (var m in messages)
        {
            var copy = (byte[])m.Clone();
            if (encrypt) reference.Transform(copy);
            expected.AddRange(copy);
        }

        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, minimumSegmentSize: 64, useSynchronizationContext: false));
        var rc4 = encrypt ? Rc4.ForMse(Key) : null;
        var wire = new List<byte>();
        var batch = new List<ReadOnlyMemory<byte>>();
        var encrypted = 0;
        var next = 0;
        var boundsHeld = true;
        while (next < messages.Count || wire.Count < expected.Count)
        {
            // One or two messages arrive, as from the session's writers.
            for (var k = 0; k < 2 && next < messages.Count; k++) WriteInSmallSpans(pipe.Writer, messages[next++]);
            await pipe.Writer.FlushAsync();
            if (!pipe.Reader.TryRead(out var result)) continue;
            var buffer = result.Buffer;
            var length = OutgoingBatch.Collect(buffer, limit, segmentsLimit, batch);
            boundsHeld &= length <= limit && batch.Count <= segmentsLimit && length == batch.Sum(b => b.Length) && (length > 0 || buffer.IsEmpty);
            if (rc4 is not null && length > encrypted)
            {
                OutgoingBatch.Encrypt(batch, encrypted, rc4);
                encrypted = length;
            }

            // The socket takes some of the batch (never nothing: that is a closed connection).
            var sent = length == 0 ? 0 : random.Next(1, length + 1);
            wire.AddRange(buffer.Slice(0, sent).ToArray());
            encrypted = Math.Max(0, encrypted - sent);
            pipe.Reader.AdvanceTo(buffer.GetPosition(sent));
        }

        return boundsHeld && wire.SequenceEqual(expected);
    }

    [Fact]
    public async Task A_batch_stops_at_the_byte_budget_and_cuts_the_last_buffer()
    {
        var pipe = new Pipe(new PipeOptions(minimumSegmentSize: 4096, useSynchronizationContext: false));
        pipe.Writer.Write(new byte[10_000]);
        await pipe.Writer.FlushAsync();
        Assert.True(pipe.Reader.TryRead(out var result));
        var batch = new List<ReadOnlyMemory<byte>>();

        Assert.Equal(5000, OutgoingBatch.Collect(result.Buffer, 5000, 256, batch));
        Assert.Equal(5000, batch.Sum(b => b.Length));
        Assert.Equal(10_000, OutgoingBatch.Collect(result.Buffer, 1 << 20, 256, batch));
        Assert.Equal(4096, OutgoingBatch.Collect(result.Buffer, 1 << 20, 1, batch));
        Assert.Single(batch);
    }

    [Fact]
    public void Encrypting_from_an_offset_leaves_the_bytes_before_it_alone()
    {
        byte[] first = [1, 2, 3, 4, 5], second = [6, 7, 8, 9];
        var batch = new List<ReadOnlyMemory<byte>> { first, second };
        var rc4 = Rc4.ForMse(Key);

        OutgoingBatch.Encrypt(batch, 7, rc4);

        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, first);
        Assert.Equal(new byte[] { 6, 7 }, second[..2]);
        var tail = new byte[] { 8, 9 };
        Rc4.ForMse(Key).Transform(tail);
        Assert.Equal(tail, second[2..]);
    }

    private static void WriteInSmallSpans(PipeWriter writer, byte[] message)
    {
        // Like PeerWire's writers: ask for a span, fill part of it, advance.
        var at = 0;
        while (at < message.Length)
        {
            var span = writer.GetSpan(1);
            var n = Math.Min(span.Length, message.Length - at);
            message.AsSpan(at, n).CopyTo(span);
            writer.Advance(n);
            at += n;
        }
    }
}
