using Peerway.Dht.Log;

namespace Peerway.Dht.Tests.Log;

/// <summary>RFC 9162 / RFC 6962 Merkle tree hashing and proofs, with Certificate Transparency's reference vectors.</summary>
public sealed class MerkleTreeTests
{
    // The RFC 6962 reference leaves and tree heads (Certificate Transparency's test data, as transparency-dev/merkle
    // publishes them), for sizes 0..8.
    private static readonly byte[][] Entries = new[] { "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f" }
        .Select(Convert.FromHexString).ToArray();

    private static readonly string[] Roots =
    [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    private static readonly byte[][] Leaves = Entries.Select(e => MerkleTree.LeafHash(e)).ToArray();

    [Fact]
    public void Roots_are_the_reference_tree_heads()
    {
        for (var n = 0; n <= 8; n++) Assert.Equal(Roots[n], Convert.ToHexStringLower(MerkleTree.Root(Leaves, n)));
    }

    [Fact]
    public void Proofs_are_the_reference_proofs()
    {
        Assert.Equal(
            ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
            MerkleTree.InclusionProof(Leaves, 0, 8).Select(Convert.ToHexStringLower));
        Assert.Equal(
            ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
            MerkleTree.InclusionProof(Leaves, 5, 8).Select(Convert.ToHexStringLower));
        Assert.Equal(
            ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
            MerkleTree.ConsistencyProof(Leaves, 2, 5).Select(Convert.ToHexStringLower));
    }

    [Fact]
    public void Every_inclusion_and_consistency_proof_verifies_in_every_shape_and_no_altered_one_does()
    {
        var leaves = Enumerable.Range(0, 40).Select(i => MerkleTree.LeafHash([(byte)i, (byte)(i * 7)])).ToArray();
        for (var n = 1; n <= leaves.Length; n++)
        {
            var root = MerkleTree.Root(leaves, n);
            for (var i = 0; i < n; i++)
            {
                var path = MerkleTree.InclusionProof(leaves, i, n);
                Assert.True(MerkleTree.VerifyInclusion(leaves[i], i, n, path, root), $"leaf {i} of {n}");
                Assert.False(MerkleTree.VerifyInclusion(leaves[(i + 1) % leaves.Length], i, n, path, root));
                if (n > 1) Assert.False(MerkleTree.VerifyInclusion(leaves[i], (i + 1) % n, n, path, root));
                if (path.Count > 0) Assert.False(MerkleTree.VerifyInclusion(leaves[i], i, n, path.Skip(1).ToList(), root));
            }

            for (var m = 1; m <= n; m++)
            {
                var oldRoot = MerkleTree.Root(leaves, m);
                var proof = MerkleTree.ConsistencyProof(leaves, m, n);
                Assert.True(MerkleTree.VerifyConsistency(m, n, oldRoot, root, proof), $"{m} -> {n}");
                if (m < n)
                {
                    // Another history of the first m leaves is not consistent with this tree.
                    var forked = MerkleTree.Root([.. leaves.Take(m - 1), MerkleTree.LeafHash("forged"u8)], m);
                    Assert.False(MerkleTree.VerifyConsistency(m, n, forked, root, proof));
                    Assert.False(MerkleTree.VerifyConsistency(m, n, oldRoot, MerkleTree.Root(leaves, n - 1), proof));
                }
            }
        }
    }

    [Fact]
    public void Malformed_proofs_are_refused_without_throwing()
    {
        var root = MerkleTree.Root(Leaves, 8);
        Assert.False(MerkleTree.VerifyInclusion(Leaves[0], 0, 8, [new byte[5], new byte[32], new byte[32]], root));
        Assert.False(MerkleTree.VerifyInclusion(Leaves[0], 9, 8, [], root));
        Assert.False(MerkleTree.VerifyInclusion(Leaves[0], 0, 8, Enumerable.Repeat(new byte[32], 70).ToList(), root));
        Assert.False(MerkleTree.VerifyConsistency(0, 8, root, root, []));
        Assert.False(MerkleTree.VerifyConsistency(3, 8, MerkleTree.Root(Leaves, 3), root, []));
        Assert.False(MerkleTree.VerifyConsistency(3, 8, MerkleTree.Root(Leaves, 3), root, Enumerable.Repeat(new byte[32], 70).ToList()));
    }
}
