using Peerway.Content;
using Peerway.Content.UnixFs;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Content;

/// <summary>
/// Files past 174² chunks (a third tree level) and the 2–4 GiB size fields, checked cheaply: small chunk sizes give
/// the same DAG shapes as multi-GiB files at 262,144-byte chunks. See docs/ARCHITECTURE.md, "Sizes from 2 GiB to
/// 4 GiB: ipfs-unixfs writes them wrongly".
/// </summary>
public sealed class UnixFsLargeDagInteropTests : IDisposable
{
    private const int Fanout = 174;
    private readonly TempDirectory _temp = new("peerway-bigdag");

    public void Dispose() => _temp.Dispose();

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Three_level_dags_past_174_squared_chunks_give_the_same_cids_as_ipfs_unixfs_importer()
    {
        ContentPeers.Require();
        // (chunk size, bytes): a full two-level tree, one chunk past it (root → [full, chain to one leaf]), one full
        // level-1 node past it, and 174² + 1 chunks of 1,024 bytes (the shape of a 7.4 GiB file at 262,144).
        (int Chunk, long Size)[] cases =
        [
            (1, Fanout * Fanout),
            (1, (Fanout * Fanout) + 1),
            (1, (Fanout * Fanout) + Fanout + 1),
            (1024, ((long)Fanout * Fanout * 1024) + 1),
        ];
        var mismatches = new List<string>();
        foreach (var (chunk, size) in cases)
        {
            var file = ContentPeers.WriteRandomFile(_temp.Path, $"f{chunk}-{size}", size, seed: (int)size);
            foreach (var mode in new[] { "0", "1" })
            {
                string[] options = ["--chunk-size", chunk.ToString(System.Globalization.CultureInfo.InvariantCulture), "--cid-version", mode];
                var ours = await ContentPeers.PeerwayAsync(["add", file, "--only-hash", .. options]);
                var theirs = await ContentPeers.RunAsync("unixfs-add.mjs", [file, .. options]);
                if (ours != theirs)
                {
                    mismatches.Add($"{size} bytes, chunk {chunk}, CIDv{mode}: peerway {ours} vs ipfs-unixfs-importer {theirs}");
                }
            }
        }

        Assert.Empty(mismatches);
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Sizes_from_2_to_4_GiB_are_written_as_protobuf_varints_where_ipfs_unixfs_writes_zero()
    {
        ContentPeers.Require();
        // Known divergence, pinned: ipfs-unixfs 13.1.1 (protons-runtime 7) encodes a uint64 in [2^31, 2^32) as one
        // wrong byte (2^31 → 0x00, 2^32 - 1 → 0xff 0x00) followed by zero padding, so every file of 2–4 GiB (root filesize) and every file past 174² chunks whose
        // last subtree holds 2–4 GiB gets a different, undecodable-by-protobuf root. Peerway writes the varint, as
        // kubo's Go protobuf does. Values outside that range must encode identically.
        ulong[] same = [(1UL << 31) - 1, 1UL << 32, 7_936_671_744];
        ulong[] divergent = [1UL << 31, 2_800_746_496, (1UL << 32) - 1];
        var values = same.Concat(divergent).ToArray();
        var js = (await ContentPeers.RunAsync("unixfs-marshal.mjs", [.. values.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))]))
            .Split('\n');
        Assert.Equal(values.Length, js.Length);
        for (var i = 0; i < values.Length; i++)
        {
            var value = values[i];
            var ours = new UnixFsData { Type = UnixFsType.File, FileSize = value, BlockSizes = [value] }.Encode();
            Assert.Equal(ContentError.None, UnixFsData.TryDecode(ours, out var decoded));
            Assert.Equal(value, decoded!.FileSize);
            Assert.Equal([value], decoded.BlockSizes);
            var theirs = Convert.FromHexString(js[i]);
            if (same.Contains(value))
            {
                Assert.Equal(Convert.ToHexStringLower(ours), js[i]);
            }
            else
            {
                // Same length (the writer reserved the varint's 5 bytes) but a wrong value and zero bytes after it
                // (field-0 tags), which a protobuf decoder (ours, Go's) rejects.
                Assert.Equal(ours.Length, theirs.Length);
                Assert.NotEqual(Convert.ToHexStringLower(ours), js[i]);
                Assert.Equal(0, theirs[^1]);
                Assert.NotEqual(ContentError.None, UnixFsData.TryDecode(theirs, out _));
            }
        }
    }
}
