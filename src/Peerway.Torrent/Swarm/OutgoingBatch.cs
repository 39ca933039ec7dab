using System.Buffers;
using System.Runtime.InteropServices;
using Peerway.Torrent.Encryption;

namespace Peerway.Torrent.Swarm;

/// <summary>
/// One send of <see cref="PeerConnection"/>'s pump: the leading bytes of the outgoing pipe, at most a byte budget in at
/// most a number of buffers (one gather write). In MSE RC4 mode the batch is encrypted in place just before it is sent,
/// from where the previous batch's encryption stopped: a partial send leaves an encrypted tail at the head of the pipe
/// that must not be encrypted twice. Encrypting per batch (not the whole pipe at once) lets the sender encrypt batch N + 1
/// while the kernel and the receiver handle batch N, and keeps the keystream aligned with the bytes on the wire.
/// </summary>
internal static class OutgoingBatch
{
    /// <summary>
    /// Fills <paramref name="batch"/> with the leading buffers of <paramref name="buffer"/>: at most
    /// <paramref name="maxBytes"/> bytes (the last buffer cut to fit) in at most <paramref name="maxSegments"/> buffers.
    /// Returns the batch's length in bytes (0 only for an empty <paramref name="buffer"/>).
    /// </summary>
    public static int Collect(in ReadOnlySequence<byte> buffer, int maxBytes, int maxSegments, List<ReadOnlyMemory<byte>> batch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSegments, 1);
        batch.Clear();
        var length = 0;
        foreach (var memory in buffer)
        {
            if (memory.IsEmpty) continue;
            var take = Math.Min(memory.Length, maxBytes - length);
            batch.Add(memory[..take]);
            length += take;
            if (length == maxBytes || batch.Count == maxSegments) break;
        }

        return length;
    }

    /// <summary>
    /// Encrypts the batch's bytes from offset <paramref name="encrypted"/> (those before it already went through
    /// <paramref name="rc4"/> in an earlier, partially sent batch) to its end, in place.
    /// </summary>
    public static void Encrypt(List<ReadOnlyMemory<byte>> batch, int encrypted, Rc4 rc4)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(encrypted);
        foreach (var memory in batch)
        {
            if (encrypted >= memory.Length)
            {
                encrypted -= memory.Length;
                continue;
            }

            // The pipe's own buffer: the writer is done with these bytes, and only the pump reads them.
            rc4.Transform(MemoryMarshal.AsMemory(memory).Span[encrypted..]);
            encrypted = 0;
        }
    }

    /// <summary>The batch as array segments for a gather send (a buffer not backed by an array is copied: never with the pipe's pool).</summary>
    public static void ToSegments(List<ReadOnlyMemory<byte>> batch, List<ArraySegment<byte>> segments)
    {
        segments.Clear();
        foreach (var memory in batch) segments.Add(MemoryMarshal.TryGetArray(memory, out var segment) ? segment : new ArraySegment<byte>(memory.ToArray()));
    }
}
