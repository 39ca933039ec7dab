using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Peerway.Content.Hashing;

/// <summary>
/// SHA-256 (FIPS 180-4 §6.2) of 16 equal-length messages at once, one message per 32-bit lane of AVX-512 registers
/// ("multi-buffer" hashing, as Intel's isa-l_crypto <c>sha256_mb</c>). UnixFS leaves are independent equal-size chunks,
/// so 16 of them hash in about half (Xeon) to two thirds (EPYC) of the time one core's SHA-NI needs for them one by one
/// (measured in docs/BENCHMARKS.md; <see cref="Sha256PathChooser"/> checks it on each machine). Each message is <c>prefix ‖ body ‖ suffix</c>: the prefix and suffix (a dag-pb leaf's headers
/// and filesize field) are the same for every lane, the bodies are 16 spans <c>stride</c> bytes apart (a memory-mapped
/// window or a read buffer), so nothing is copied except the first and last blocks.
/// </summary>
/// <remarks>
/// The only unsafe code in Peerway.Content (AllowUnsafeBlocks is set for this project alone): the bodies are read
/// through raw pointers into a mapping that has no managed span covering all 16 lanes. The importer uses it only where
/// <see cref="IsSupported"/> and <see cref="Sha256PathChooser"/> measured it faster than
/// <see cref="System.Security.Cryptography.SHA256"/> one message at a time (or it was forced).
/// </remarks>
internal static unsafe class Sha256x16
{
    public const int Lanes = 16;
    public const int DigestSize = 32;

    /// <summary>Longest prefix and suffix (a dag-pb leaf header is at most 16 bytes).</summary>
    public const int MaxAffixLength = 64;

    private const int BlockSize = 64;

    // Scratch per lane for the blocks that mix prefix, body, suffix and padding: one head block, at most three tail
    // blocks (less than one block of body, a suffix of at most 64 bytes, 9 bytes of padding).
    private const int HeadBlocks = 1;
    private const int TailBlocks = 3;

    public static bool IsSupported => Avx512F.IsSupported && Avx512BW.IsSupported;

    // FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64 primes.
    private static ReadOnlySpan<uint> K =>
    [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    // FIPS 180-4 §5.3.3: the initial hash value.
    private static ReadOnlySpan<uint> H0 =>
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    /// <summary>
    /// Writes SHA-256(<paramref name="prefix"/> ‖ body<sub>i</sub> ‖ <paramref name="suffix"/>) for i = 0..15 to
    /// <paramref name="digests"/>[32·i..], where body<sub>i</sub> is the <paramref name="bodyLength"/> bytes at
    /// <paramref name="firstBody"/> + i·<paramref name="stride"/>.
    /// </summary>
    public static void Hash(
        ReadOnlySpan<byte> prefix, byte* firstBody, long stride, int bodyLength, ReadOnlySpan<byte> suffix, Span<byte> digests)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefix.Length, MaxAffixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(suffix.Length, MaxAffixLength);
        ArgumentOutOfRangeException.ThrowIfNegative(bodyLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(digests.Length, Lanes * DigestSize);
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException("AVX-512 F and BW are required.");
        }

        var message = new Message(prefix.Length, bodyLength, suffix.Length);
        var state = stackalloc Vector512<uint>[8];
        for (var i = 0; i < 8; i++)
        {
            state[i] = Vector512.Create(H0[i]);
        }

        var lanes = stackalloc byte*[Lanes];
        var scratch = stackalloc byte[Lanes * (HeadBlocks + TailBlocks) * BlockSize];

        // Blocks before the first one that lies wholly in the body: prefix and the body's first bytes.
        var headBlocks = (int)Math.Min(message.FirstBodyBlock, message.TotalBlocks);
        if (headBlocks > 0)
        {
            for (var lane = 0; lane < Lanes; lane++)
            {
                lanes[lane] = scratch + (lane * HeadBlocks * BlockSize);
                message.Copy(prefix, firstBody + (lane * stride), suffix, 0, new Span<byte>(lanes[lane], headBlocks * BlockSize));
            }

            Compress(state, lanes, 0, headBlocks);
        }

        // Blocks wholly inside the body: hashed where they lie, no copy.
        var bodyBlocks = message.EndBodyBlock - message.FirstBodyBlock;
        if (bodyBlocks > 0)
        {
            var skip = (message.FirstBodyBlock * BlockSize) - prefix.Length;
            for (var lane = 0; lane < Lanes; lane++)
            {
                lanes[lane] = firstBody + (lane * stride) + skip;
            }

            Compress(state, lanes, 0, bodyBlocks);
        }

        // The rest: the body's last bytes, the suffix and the padding (FIPS 180-4 §5.1.1).
        var tailStart = Math.Max(message.FirstBodyBlock, message.EndBodyBlock);
        var tailBlocks = (int)(message.TotalBlocks - tailStart);
        if (tailBlocks > 0)
        {
            for (var lane = 0; lane < Lanes; lane++)
            {
                lanes[lane] = scratch + (((lane * TailBlocks) + (Lanes * HeadBlocks)) * BlockSize);
                message.Copy(prefix, firstBody + (lane * stride), suffix, tailStart * BlockSize, new Span<byte>(lanes[lane], tailBlocks * BlockSize));
            }

            Compress(state, lanes, 0, tailBlocks);
        }

        // FIPS 180-4 §6.2.2 step 4: the digest is H0..H7, big-endian; lane i of each state register is message i's.
        var words = stackalloc uint[8 * Lanes];
        for (var i = 0; i < 8; i++)
        {
            state[i].Store(words + (i * Lanes));
        }

        for (var lane = 0; lane < Lanes; lane++)
        {
            for (var i = 0; i < 8; i++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(digests[((lane * DigestSize) + (i * 4))..], words[(i * Lanes) + lane]);
            }
        }
    }

    /// <summary>As the pointer overload, over 16 bodies in <paramref name="bodies"/> (tests, benchmarks).</summary>
    public static void Hash(
        ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> bodies, int stride, int bodyLength, ReadOnlySpan<byte> suffix, Span<byte> digests)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bodies.Length, ((Lanes - 1) * (long)stride) + bodyLength);
        fixed (byte* first = bodies)
        {
            Hash(prefix, first, stride, bodyLength, suffix, digests);
        }
    }

    /// <summary>The layout of <c>prefix ‖ body ‖ suffix ‖ padding</c> in 64-byte blocks.</summary>
    private readonly struct Message(int prefixLength, int bodyLength, int suffixLength)
    {
        private long Length => (long)prefixLength + bodyLength + suffixLength;

        /// <summary>FIPS 180-4 §5.1.1: a 1 bit, zeros, and the 64-bit length, to a multiple of 512 bits.</summary>
        public long TotalBlocks => (Length + 9 + BlockSize - 1) / BlockSize;

        /// <summary>The first block that starts inside the body (or at its start).</summary>
        public long FirstBodyBlock => (prefixLength + BlockSize - 1) / BlockSize;

        /// <summary>One past the last block that ends inside the body (or at its end).</summary>
        public long EndBodyBlock => Math.Max(FirstBodyBlock, ((long)prefixLength + bodyLength) / BlockSize);

        /// <summary>Copies message bytes [<paramref name="from"/>, +destination.Length), padding included.</summary>
        public void Copy(ReadOnlySpan<byte> prefix, byte* body, ReadOnlySpan<byte> suffix, long from, Span<byte> destination)
        {
            destination.Clear();
            CopyPart(prefix, 0, from, destination);
            CopyPart(new ReadOnlySpan<byte>(body, bodyLength), prefixLength, from, destination);
            CopyPart(suffix, (long)prefixLength + bodyLength, from, destination);
            var length = Length;
            if (length >= from && length < from + destination.Length)
            {
                destination[(int)(length - from)] = 0x80;
            }

            var lengthField = (TotalBlocks * BlockSize) - 8;
            if (lengthField >= from && lengthField + 8 <= from + destination.Length)
            {
                BinaryPrimitives.WriteUInt64BigEndian(destination[(int)(lengthField - from)..], (ulong)length * 8);
            }
        }

        /// <summary>Copies the overlap of <paramref name="part"/> (at message offset <paramref name="at"/>) with the destination's range.</summary>
        private static void CopyPart(ReadOnlySpan<byte> part, long at, long from, Span<byte> destination)
        {
            var start = Math.Max(at, from);
            var end = Math.Min(at + part.Length, from + destination.Length);
            if (start < end)
            {
                part.Slice((int)(start - at), (int)(end - start)).CopyTo(destination[(int)(start - from)..]);
            }
        }
    }

    /// <summary>FIPS 180-4 §6.2.2: compresses <paramref name="blocks"/> 64-byte blocks of every lane into the state.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Compress(Vector512<uint>* state, byte** lanes, long offset, long blocks)
    {
        // Message words are big-endian (§3.1): swap the bytes of every 32-bit word.
        var swap = Vector512.Create(
            (byte)3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
            3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
        var w = stackalloc Vector512<uint>[16];
        ref var k = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(K);
        for (long b = 0; b < blocks; b++)
        {
            var off = offset + (b * BlockSize);

            // Row i = lane i's block (16 words); transposed so that w[t] holds word t of every lane.
            Transpose4(Load(lanes, 0, off), Load(lanes, 1, off), Load(lanes, 2, off), Load(lanes, 3, off), out var c0, out var c1, out var c2, out var c3);
            Transpose4(Load(lanes, 4, off), Load(lanes, 5, off), Load(lanes, 6, off), Load(lanes, 7, off), out var c4, out var c5, out var c6, out var c7);
            Transpose4(Load(lanes, 8, off), Load(lanes, 9, off), Load(lanes, 10, off), Load(lanes, 11, off), out var c8, out var c9, out var c10, out var c11);
            Transpose4(Load(lanes, 12, off), Load(lanes, 13, off), Load(lanes, 14, off), Load(lanes, 15, off), out var c12, out var c13, out var c14, out var c15);
            Gather(c0, c4, c8, c12, w, 0, swap);
            Gather(c1, c5, c9, c13, w, 1, swap);
            Gather(c2, c6, c10, c14, w, 2, swap);
            Gather(c3, c7, c11, c15, w, 3, swap);

            var a = state[0];
            var bb = state[1];
            var c = state[2];
            var d = state[3];
            var e = state[4];
            var f = state[5];
            var g = state[6];
            var h = state[7];
            for (var t = 0; t < 64; t++)
            {
                Vector512<uint> wt;
                if (t < 16)
                {
                    wt = w[t];
                }
                else
                {
                    // §6.2.2 step 1: W_t = σ1(W_t-2) + W_t-7 + σ0(W_t-15) + W_t-16 (0x96: three-way XOR).
                    var w15 = w[(t - 15) & 15];
                    var w2 = w[(t - 2) & 15];
                    var s0 = Avx512F.TernaryLogic(Avx512F.RotateRight(w15, 7), Avx512F.RotateRight(w15, 18), Avx512F.ShiftRightLogical(w15, 3), 0x96);
                    var s1 = Avx512F.TernaryLogic(Avx512F.RotateRight(w2, 17), Avx512F.RotateRight(w2, 19), Avx512F.ShiftRightLogical(w2, 10), 0x96);
                    wt = w[t & 15] + s0 + w[(t - 7) & 15] + s1;
                    w[t & 15] = wt;
                }

                // §6.2.2 step 3 (§4.1.2): Σ1, Ch (0xCA: e ? f : g), Σ0, Maj (0xE8: majority).
                var bigSigma1 = Avx512F.TernaryLogic(Avx512F.RotateRight(e, 6), Avx512F.RotateRight(e, 11), Avx512F.RotateRight(e, 25), 0x96);
                var t1 = h + bigSigma1 + Avx512F.TernaryLogic(e, f, g, 0xCA) + Vector512.Create(Unsafe.Add(ref k, t)) + wt;
                var bigSigma0 = Avx512F.TernaryLogic(Avx512F.RotateRight(a, 2), Avx512F.RotateRight(a, 13), Avx512F.RotateRight(a, 22), 0x96);
                var t2 = bigSigma0 + Avx512F.TernaryLogic(a, bb, c, 0xE8);
                h = g;
                g = f;
                f = e;
                e = d + t1;
                d = c;
                c = bb;
                bb = a;
                a = t1 + t2;
            }

            // §6.2.2 step 4.
            state[0] += a;
            state[1] += bb;
            state[2] += c;
            state[3] += d;
            state[4] += e;
            state[5] += f;
            state[6] += g;
            state[7] += h;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Load(byte** lanes, int lane, long offset) => Vector512.Load((uint*)(lanes[lane] + offset));

    /// <summary>Transposes 4×4 words inside each 128-bit lane: output m holds, per 128-bit lane L, word 4L+m of rows 0..3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4(
        Vector512<uint> r0, Vector512<uint> r1, Vector512<uint> r2, Vector512<uint> r3,
        out Vector512<uint> c0, out Vector512<uint> c1, out Vector512<uint> c2, out Vector512<uint> c3)
    {
        var b0 = Avx512F.UnpackLow(r0, r1).AsUInt64();
        var b1 = Avx512F.UnpackHigh(r0, r1).AsUInt64();
        var b2 = Avx512F.UnpackLow(r2, r3).AsUInt64();
        var b3 = Avx512F.UnpackHigh(r2, r3).AsUInt64();
        c0 = Avx512F.UnpackLow(b0, b2).AsUInt32();
        c1 = Avx512F.UnpackHigh(b0, b2).AsUInt32();
        c2 = Avx512F.UnpackLow(b1, b3).AsUInt32();
        c3 = Avx512F.UnpackHigh(b1, b3).AsUInt32();
    }

    /// <summary>Transposes the 128-bit lanes of four row groups: w[4L+m] = lane L of g0, g1, g2, g3; then byte-swaps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Gather(
        Vector512<uint> g0, Vector512<uint> g1, Vector512<uint> g2, Vector512<uint> g3, Vector512<uint>* w, int m, Vector512<byte> swap)
    {
        var d0 = Avx512F.Shuffle4x128(g0, g1, 0x44);
        var d1 = Avx512F.Shuffle4x128(g0, g1, 0xEE);
        var d2 = Avx512F.Shuffle4x128(g2, g3, 0x44);
        var d3 = Avx512F.Shuffle4x128(g2, g3, 0xEE);
        w[m] = Avx512BW.Shuffle(Avx512F.Shuffle4x128(d0, d2, 0x88).AsByte(), swap).AsUInt32();
        w[4 + m] = Avx512BW.Shuffle(Avx512F.Shuffle4x128(d0, d2, 0xDD).AsByte(), swap).AsUInt32();
        w[8 + m] = Avx512BW.Shuffle(Avx512F.Shuffle4x128(d1, d3, 0x88).AsByte(), swap).AsUInt32();
        w[12 + m] = Avx512BW.Shuffle(Avx512F.Shuffle4x128(d1, d3, 0xDD).AsByte(), swap).AsUInt32();
    }
}
