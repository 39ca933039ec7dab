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
    private uint _i;
    private uint _j;

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
    public void Skip(int count)
    {
        ref var s = ref MemoryMarshal.GetArrayDataReference(_s);
        uint i = _i, j = _j;
        for (var k = 0; k < count; k++)
        {
            i = (i + 1) & 0xFF;
            var si = Unsafe.Add(ref s, (nint)i);
            j = (j + si) & 0xFF;
            Unsafe.Add(ref s, (nint)i) = Unsafe.Add(ref s, (nint)j);
            Unsafe.Add(ref s, (nint)j) = si;
        }

        _i = i;
        _j = j;
    }

    /// <summary>XORs the keystream into <paramref name="data"/> (encrypts or decrypts in place).</summary>
    public void Transform(Span<byte> data) => Transform(data, data);

    /// <summary>Writes <paramref name="source"/> XOR keystream to <paramref name="destination"/> (which may be the same memory).</summary>
    public void Transform(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination too short", nameof(destination));
        ref var s = ref MemoryMarshal.GetArrayDataReference(_s);
        ref var src = ref MemoryMarshal.GetReference(source);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        uint i = _i, j = _j;
        var n = source.Length;
        for (var k = 0; k < n; k++)
        {
            i = (i + 1) & 0xFF;
            uint si = Unsafe.Add(ref s, (nint)i);
            j = (j + si) & 0xFF;
            uint sj = Unsafe.Add(ref s, (nint)j);
            Unsafe.Add(ref s, (nint)i) = (byte)sj;
            Unsafe.Add(ref s, (nint)j) = (byte)si;
            Unsafe.Add(ref dst, k) = (byte)(Unsafe.Add(ref src, k) ^ Unsafe.Add(ref s, (nint)((si + sj) & 0xFF)));
        }

        _i = i;
        _j = j;
    }
}
