using System.Numerics;
using System.Security.Cryptography;

namespace Peerway.Dht.Log;

/// <summary>
/// RFC 9162 §2.1 Merkle tree hashing over a log's entries (Certificate Transparency's, which Hypercore's tree also
/// follows): leaves hashed with a 0x00 prefix, interior nodes with 0x01, the tree split at the largest power of two
/// below its size; audit (inclusion) and consistency proofs and their verification (§2.1.3–2.1.4). Hashes are SHA-256,
/// 32 bytes. Sans-I/O: the caller holds the leaf hashes.
/// </summary>
public static class MerkleTree
{
    /// <summary>SHA-256 output length.</summary>
    public const int HashLength = 32;

    /// <summary>RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0)).</summary>
    public static byte[] LeafHash(ReadOnlySpan<byte> entry)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData([0x00]);
        sha.AppendData(entry);
        return sha.GetHashAndReset();
    }

    /// <summary>RFC 9162 §2.1.1: SHA-256(0x01 || left || right).</summary>
    public static byte[] NodeHash(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        Span<byte> buffer = stackalloc byte[1 + (2 * HashLength)];
        buffer[0] = 0x01;
        left.CopyTo(buffer[1..]);
        right.CopyTo(buffer[(1 + HashLength)..]);
        return SHA256.HashData(buffer);
    }

    /// <summary>RFC 9162 §2.1.1: the root (Merkle Tree Hash) of the first <paramref name="size"/> leaves; the hash of
    /// the empty string for an empty tree.</summary>
    public static byte[] Root(IReadOnlyList<byte[]> leafHashes, long size)
    {
        ArgumentNullException.ThrowIfNull(leafHashes);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, leafHashes.Count);
        return size == 0 ? SHA256.HashData([]) : Subtree(leafHashes, 0, (int)size);
    }

    /// <summary>RFC 9162 §2.1.3.1: PATH(m, D[n]), the audit path of leaf <paramref name="index"/> in a tree of
    /// <paramref name="size"/> leaves, bottom up.</summary>
    public static IReadOnlyList<byte[]> InclusionProof(IReadOnlyList<byte[]> leafHashes, long index, long size)
    {
        ArgumentNullException.ThrowIfNull(leafHashes);
        if (size < 1 || size > leafHashes.Count || index < 0 || index >= size) throw new ArgumentOutOfRangeException(nameof(index), "need 0 <= index < size <= leaves");
        var path = new List<byte[]>();
        Path((int)index, leafHashes, 0, (int)size, path);
        return path;
    }

    /// <summary>RFC 9162 §2.1.4.1: PROOF(m, D[n]), that the tree of <paramref name="oldSize"/> leaves is a prefix of the
    /// tree of <paramref name="newSize"/>.</summary>
    public static IReadOnlyList<byte[]> ConsistencyProof(IReadOnlyList<byte[]> leafHashes, long oldSize, long newSize)
    {
        ArgumentNullException.ThrowIfNull(leafHashes);
        if (oldSize < 1 || oldSize > newSize || newSize > leafHashes.Count) throw new ArgumentOutOfRangeException(nameof(oldSize), "need 0 < oldSize <= newSize <= leaves");
        var proof = new List<byte[]>();
        if (oldSize < newSize) SubProof((int)oldSize, leafHashes, 0, (int)newSize, true, proof);
        return proof;
    }

    /// <summary>RFC 9162 §2.1.3.2: whether <paramref name="proof"/> shows the leaf <paramref name="leafHash"/> at
    /// <paramref name="index"/> in the tree of <paramref name="size"/> leaves whose root is <paramref name="root"/>.
    /// Never throws on a malformed proof (false).</summary>
    public static bool VerifyInclusion(ReadOnlySpan<byte> leafHash, long index, long size, IReadOnlyList<byte[]> proof, ReadOnlySpan<byte> root)
    {
        ArgumentNullException.ThrowIfNull(proof);
        if (index < 0 || index >= size || leafHash.Length != HashLength || root.Length != HashLength) return false;
        long fn = index, sn = size - 1;
        var r = leafHash.ToArray();
        foreach (var p in proof)
        {
            if (p is not { Length: HashLength } || sn == 0) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                r = NodeHash(p, r);
                if ((fn & 1) == 0)
                {
                    while ((fn & 1) == 0 && fn != 0)
                    {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            }
            else
            {
                r = NodeHash(r, p);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && r.AsSpan().SequenceEqual(root);
    }

    /// <summary>RFC 9162 §2.1.4.2: whether <paramref name="proof"/> shows that the tree of <paramref name="oldSize"/>
    /// leaves with root <paramref name="oldRoot"/> is a prefix of the tree of <paramref name="newSize"/> leaves with
    /// root <paramref name="newRoot"/>. Never throws on a malformed proof (false).</summary>
    public static bool VerifyConsistency(long oldSize, long newSize, ReadOnlySpan<byte> oldRoot, ReadOnlySpan<byte> newRoot, IReadOnlyList<byte[]> proof)
    {
        ArgumentNullException.ThrowIfNull(proof);
        if (oldSize < 1 || oldSize > newSize || oldRoot.Length != HashLength || newRoot.Length != HashLength) return false;
        if (oldSize == newSize) return proof.Count == 0 && oldRoot.SequenceEqual(newRoot);
        if (proof.Any(p => p is not { Length: HashLength })) return false;
        // §2.1.4.2 step 1: if first is an exact power of 2, prepend first_hash to the consistency_path.
        var path = BitOperations.IsPow2(oldSize) ? [oldRoot.ToArray(), .. proof] : proof.ToList();
        if (path.Count == 0) return false;
        long fn = oldSize - 1, sn = newSize - 1;
        while ((fn & 1) == 1)
        {
            fn >>= 1;
            sn >>= 1;
        }

        var fr = path[0];
        var sr = path[0];
        foreach (var c in path.Skip(1))
        {
            if (sn == 0) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                fr = NodeHash(c, fr);
                sr = NodeHash(c, sr);
                if ((fn & 1) == 0)
                {
                    while ((fn & 1) == 0 && fn != 0)
                    {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            }
            else
            {
                sr = NodeHash(sr, c);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && fr.AsSpan().SequenceEqual(oldRoot) && sr.AsSpan().SequenceEqual(newRoot);
    }

    private static byte[] Subtree(IReadOnlyList<byte[]> leaves, int start, int count)
    {
        if (count == 1) return leaves[start];
        var k = LargestPowerOfTwoBelow(count);
        return NodeHash(Subtree(leaves, start, k), Subtree(leaves, start + k, count - k));
    }

    private static void Path(int m, IReadOnlyList<byte[]> leaves, int start, int count, List<byte[]> path)
    {
        if (count == 1) return;
        var k = LargestPowerOfTwoBelow(count);
        if (m < k)
        {
            Path(m, leaves, start, k, path);
            path.Add(Subtree(leaves, start + k, count - k));
        }
        else
        {
            Path(m - k, leaves, start + k, count - k, path);
            path.Add(Subtree(leaves, start, k));
        }
    }

    // RFC 9162 §2.1.4.1: SUBPROOF(m, D[n], b).
    private static void SubProof(int m, IReadOnlyList<byte[]> leaves, int start, int count, bool complete, List<byte[]> proof)
    {
        if (m == count)
        {
            if (!complete) proof.Add(Subtree(leaves, start, count));
            return;
        }

        var k = LargestPowerOfTwoBelow(count);
        if (m <= k)
        {
            SubProof(m, leaves, start, k, complete, proof);
            proof.Add(Subtree(leaves, start + k, count - k));
        }
        else
        {
            SubProof(m - k, leaves, start + k, count - k, false, proof);
            proof.Add(Subtree(leaves, start, k));
        }
    }

    /// <summary>The largest power of two smaller than <paramref name="n"/> (n ≥ 2).</summary>
    private static int LargestPowerOfTwoBelow(int n) => 1 << (BitOperations.Log2((uint)n - 1));
}
