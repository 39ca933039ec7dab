using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Peerway.Torrent.Encryption;

/// <summary>
/// RC4 (the "ARC4" keystream of MSE): one direction of an encrypted peer connection. Not thread-safe; each direction
/// has its own instance, used by one task at a time. Transforms in place or from a source into a destination, and never
/// allocates after construction.
/// </summary>
internal sealed class Rc4
{
    private readonly byte[] _s = new byte[256];
    private nuint _i;
    private nuint _j;

    public Rc4(ReadOnlySpan<byte> key)
    {
        if (key.IsEmpty || key.Length > 256) throw new ArgumentException("RC4 keys are 1 to 256 bytes", nameof(key));
        for (var k = 0; k < 256; k++) _s[k] = (byte)k;
        // The key-scheduling algorithm.
        var j = 0;
        for (var k = 0; k < 256; k++)
        {
            j = (j + _s[k] + key[k % key.Length]) & 0xFF;
            (_s[k], _s[j]) = (_s[j], _s[k]);
        }
    }

    /// <summary>MSE: "RC4 ... with the first 1024 bytes of the keystream discarded".</summary>
    public static Rc4 ForMse(ReadOnlySpan<byte> key)
    {
        var rc4 = new Rc4(key);
        rc4.Skip(1024);
        return rc4;
    }

    /// <summary>Advances the keystream by <paramref name="count"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Skip(int count)
    {
        ref var s = ref MemoryMarshal.GetArrayDataReference(_s);
        nuint i = _i, j = _j;
        for (var k = 0; k < count; k++) Step(ref s, ref i, ref j);
        _i = i;
        _j = j;
    }

    /// <summary>XORs the keystream into <paramref name="data"/> (encrypts or decrypts in place).</summary>
    public void Transform(Span<byte> data) => Transform(data, data);

    /// <summary>Writes <paramref name="source"/> XOR keystream to <paramref name="destination"/> (which may be the same memory).</summary>
    /// <remarks>
    /// The keystream is byte-serial (each byte depends on the state the previous one left), so the speed is in the
    /// per-byte cost: the state is a 256-byte table indexed without bounds checks, i and j stay in registers as
    /// native-width integers (no sign or zero extension between steps), and eight keystream bytes are gathered into one
    /// 64-bit word that is XORed with eight bytes of the source at once (OpenSSL's rc4-x86_64 does the same).
    /// Compiled fully optimised from the first call (AggressiveOptimization): the unoptimised tier would not inline
    /// <see cref="Step"/>, and the loop would wait for on-stack replacement.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Transform(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination too short", nameof(destination));
        ref var s = ref MemoryMarshal.GetArrayDataReference(_s);
        ref var src = ref MemoryMarshal.GetReference(source);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        nuint i = _i, j = _j;
        nuint n = (nuint)source.Length, k = 0;
        for (; k + 8 <= n; k += 8)
        {
            var ks = Step(ref s, ref i, ref j);
            ks |= Step(ref s, ref i, ref j) << 8;
            ks |= Step(ref s, ref i, ref j) << 16;
            ks |= Step(ref s, ref i, ref j) << 24;
            ks |= Step(ref s, ref i, ref j) << 32;
            ks |= Step(ref s, ref i, ref j) << 40;
            ks |= Step(ref s, ref i, ref j) << 48;
            ks |= Step(ref s, ref i, ref j) << 56;
            // Byte m of the word (from the low end) is keystream byte k + m: memory order on little-endian hardware.
            if (!BitConverter.IsLittleEndian) ks = BinaryPrimitives.ReverseEndianness(ks);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, k), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref src, k)) ^ ks);
        }

        for (; k < n; k++) Unsafe.Add(ref dst, k) = (byte)(Unsafe.Add(ref src, k) ^ (byte)Step(ref s, ref i, ref j));
        _i = i;
        _j = j;
    }

    /// <summary>
    /// One step of the pseudo-random generation algorithm: i = i + 1; j = j + S[i]; swap S[i] and S[j]; the keystream
    /// byte is S[S[i] + S[j]] (all mod 256). Indices stay below 256, so the table needs no bounds checks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Step(ref byte s, ref nuint i, ref nuint j)
    {
        i = (i + 1) & 0xFF;
        nuint si = Unsafe.Add(ref s, i);
        j = (j + si) & 0xFF;
        nuint sj = Unsafe.Add(ref s, j);
        Unsafe.Add(ref s, i) = (byte)sj;
        Unsafe.Add(ref s, j) = (byte)si;
        return Unsafe.Add(ref s, (si + sj) & 0xFF);
    }
}
