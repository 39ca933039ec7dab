using System.Text;
using Peerway.Dht.Log;

namespace Peerway.Dht.Tests.Log;

/// <summary>The tamper-evident log on disk: appends signed as BEP 44 heads, tampering found by index, forks proven.</summary>
public sealed class LogDirectoryTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pw-log-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private LogDirectory NewLog(out DhtSigningKey key, int entries)
    {
        key = DhtSigningKey.Generate();
        var log = LogDirectory.Create(Path.Combine(_root, "log"), "journal", key);
        for (var i = 0; i < entries; i++) log.Append(Encoding.UTF8.GetBytes($"entry {i}"));
        return log;
    }

    [Fact]
    public void Appends_are_signed_heads_that_verify_with_the_public_key_alone_and_travel_as_BEP_44_items()
    {
        var log = NewLog(out var key, 10);
        using (key)
        {
            var verification = LogDirectory.Open(Path.Combine(_root, "log")).Verify();
            Assert.True(verification.Ok, verification.Problem);
            var head = verification.Head!;
            Assert.Equal(10, head.Length);
            var item = head.ToItem();
            Assert.True(Bep44.IsValid(item));
            Assert.Equal(10, item.Sequence);
            Assert.Equal(Bep44.MutableTarget(key.PublicKey, "journal"u8), item.Target);
            var back = LogHead.FromItem(item);
            Assert.NotNull(back);
            Assert.Equal((head.Name, head.Length), (back.Name, back.Length));
            Assert.Equal(head.Root, back.Root);
            Assert.Equal(head.PublicKey, back.PublicKey);
            Assert.Null(LogHead.FromItem(item with { Value = item.Value.Select((b, i) => i == item.Value.Length - 2 ? (byte)(b ^ 1) : b).ToArray() }));

            // Every entry is provably in the log, and each earlier head is a prefix of the latest.
            var heads = log.Heads();
            for (var i = 0; i < 10; i++)
            {
                Assert.True(MerkleTree.VerifyInclusion(MerkleTree.LeafHash(log.ReadEntry(i)), i, 10, log.InclusionProof(i, 10), head.Root));
            }

            foreach (var earlier in heads.Take(9))
            {
                Assert.True(MerkleTree.VerifyConsistency(earlier.Length, 10, earlier.Root, head.Root, log.ConsistencyProof(earlier.Length, 10)));
            }
        }
    }

    [Fact]
    public void A_changed_entry_is_found_by_its_index()
    {
        _ = NewLog(out var key, 12);
        key.Dispose();
        File.WriteAllText(Path.Combine(_root, "log", "entries", "0000000004"), "entry 4, rewritten");
        var verification = LogDirectory.Open(Path.Combine(_root, "log")).Verify();
        Assert.False(verification.Ok);
        Assert.Equal(4, verification.TamperedEntry);
    }

    [Fact]
    public void Rewriting_the_leaf_hashes_to_match_does_not_pass_the_signed_heads()
    {
        _ = NewLog(out var key, 6);
        key.Dispose();
        var dir = Path.Combine(_root, "log");
        File.WriteAllText(Path.Combine(dir, "entries", "0000000002"), "forged");
        var leaves = File.ReadAllBytes(Path.Combine(dir, "leaves"));
        MerkleTree.LeafHash("forged"u8).CopyTo(leaves, 2 * MerkleTree.HashLength);
        File.WriteAllBytes(Path.Combine(dir, "leaves"), leaves);
        var verification = LogDirectory.Open(dir).Verify();
        Assert.False(verification.Ok);
        Assert.Contains("do not match the signed head of length 3", verification.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_signed_heads_of_one_length_with_different_roots_are_a_fork_proof()
    {
        var log = NewLog(out var key, 3);
        using (key)
        {
            // The owner signs another history of length 3 (e.g. from a second machine): a follower that sees both keeps proof.
            var other = LogHead.Sign(key, "journal", 3, MerkleTree.Root([.. Enumerable.Range(0, 3).Select(i => MerkleTree.LeafHash(Encoding.UTF8.GetBytes($"other {i}")))], 3));
            Assert.Null(log.Receive(log.Heads()[^1]));
            var fork = log.Receive(other);
            Assert.NotNull(fork);
            Assert.True(fork.IsValid());
            var verification = LogDirectory.Open(Path.Combine(_root, "log")).Verify();
            Assert.False(verification.Ok);
            Assert.NotNull(verification.Fork);

            // A head signed by another key is refused.
            using var stranger = DhtSigningKey.Generate();
            Assert.Throws<InvalidDataException>(() => log.Receive(LogHead.Sign(stranger, "journal", 4, new byte[32])));
        }
    }

    [Fact]
    public void A_forged_head_file_is_reported()
    {
        _ = NewLog(out var key, 2);
        key.Dispose();
        var path = Path.Combine(_root, "log", "heads", "0000000002");
        var parts = File.ReadAllText(path).Trim().Split(' ');
        parts[3] = Convert.ToHexStringLower(new byte[32]);
        File.WriteAllText(path, string.Join(' ', parts) + "\n");
        var verification = LogDirectory.Open(Path.Combine(_root, "log")).Verify();
        Assert.False(verification.Ok);
        Assert.Contains("do not verify", verification.Problem, StringComparison.Ordinal);
    }
}
