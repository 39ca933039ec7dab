using Peerway.Content.Hashing;

namespace Peerway.Content.UnixFs;

/// <summary>
/// UnixFS import parameters. The defaults are kubo's and ipfs-unixfs-importer's "unixfs-v0-2015" profile: CIDv0,
/// dag-pb leaves, 262,144-byte fixed chunks, balanced DAG with at most 174 links per node, HAMT sharding once a
/// directory's links exceed 262,144 bytes (estimated as name bytes + CID bytes per link).
/// </summary>
public sealed record ImportOptions
{
    /// <summary>kubo: the default chunker is size-262144.</summary>
    public const int DefaultChunkSize = 262_144;

    /// <summary>kubo refuses chunks over 1 MiB (ChunkSizeLimit); blocks stay under the 2 MiB bitswap limit.</summary>
    public const int MaxChunkSize = 1024 * 1024;

    /// <summary>go-unixfs helpers.DefaultLinksPerBlock: 174 links keep a parent node under 8 KiB.</summary>
    public const int DefaultMaxLinksPerNode = 174;

    /// <summary>kubo Import.UnixFSHAMTDirectorySizeThreshold: 256 KiB.</summary>
    public const int DefaultShardSplitThresholdBytes = 262_144;

    /// <summary>0 (kubo's default) or 1.</summary>
    public int CidVersion { get; init; }

    /// <summary>Raw leaves; null means "true for CIDv1, false for CIDv0" (kubo: --cid-version=1 implies --raw-leaves).</summary>
    public bool? RawLeaves { get; init; }

    /// <summary>Bytes per leaf chunk, 1 to <see cref="MaxChunkSize"/> (fixed-size chunker; default <see cref="DefaultChunkSize"/>).</summary>
    public int ChunkSize { get; init; } = DefaultChunkSize;

    /// <summary>Links per node of a file's balanced DAG, 2 to 8192 (default <see cref="DefaultMaxLinksPerNode"/>).</summary>
    public int MaxLinksPerNode { get; init; } = DefaultMaxLinksPerNode;

    /// <summary>Estimated size of a directory's links, in bytes, above which it is HAMT-sharded; positive (default
    /// <see cref="DefaultShardSplitThresholdBytes"/>).</summary>
    public int ShardSplitThresholdBytes { get; init; } = DefaultShardSplitThresholdBytes;

    /// <summary>Leaves hashed concurrently (the DAG and CIDs do not depend on it). Default: the processor count, at most 8.</summary>
    public int HashParallelism { get; init; } = Math.Clamp(Environment.ProcessorCount, 1, 8);

    /// <summary>
    /// How full batches of 16 leaves are hashed (the CIDs do not depend on it): <see cref="Sha256Path.Auto"/> (default)
    /// times both paths once per process and takes the faster; <see cref="Sha256Path.MultiBuffer"/> needs AVX-512 F and BW.
    /// </summary>
    public Sha256Path Sha256 { get; init; } = Sha256Path.Auto;

    /// <summary>
    /// Whether a file (a seekable <see cref="FileStream"/>) is memory-mapped and hashed in place rather than read into
    /// buffers (the CIDs do not depend on it); tests turn it off to compare both read paths.
    /// </summary>
    internal bool MapFiles { get; init; } = true;

    /// <summary>The effective raw-leaves setting.</summary>
    public bool UseRawLeaves => RawLeaves ?? CidVersion == 1;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a value outside its documented range, or for
    /// <see cref="Sha256Path.MultiBuffer"/> on a CPU without AVX-512 F and BW.</summary>
    public void Validate()
    {
        if (CidVersion is not (0 or 1))
        {
            throw new ArgumentOutOfRangeException(nameof(CidVersion), CidVersion, "CID version must be 0 or 1.");
        }

        if (ChunkSize is < 1 or > MaxChunkSize)
        {
            throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, $"chunk size must be 1..{MaxChunkSize} bytes.");
        }

        if (MaxLinksPerNode < 2 || MaxLinksPerNode > 8192)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxLinksPerNode), MaxLinksPerNode, "links per node must be 2..8192.");
        }

        if (HashParallelism is < 1 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(HashParallelism), HashParallelism, "hash parallelism must be 1..64.");
        }

        if (!Enum.IsDefined(Sha256))
        {
            throw new ArgumentOutOfRangeException(nameof(Sha256), Sha256, "SHA-256 path must be auto, multibuffer or platform.");
        }

        if (Sha256 == Sha256Path.MultiBuffer && !Sha256x16.IsSupported)
        {
            throw new ArgumentOutOfRangeException(nameof(Sha256), Sha256, "the multi-buffer SHA-256 path needs AVX-512 F and BW, which this CPU lacks.");
        }

        if (ShardSplitThresholdBytes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ShardSplitThresholdBytes), ShardSplitThresholdBytes, "must be positive.");
        }
    }
}

/// <summary>An imported file or directory: its CID, cumulative DAG size (Tsize) and content size.</summary>
public sealed record ImportResult(Peerway.Core.Multiformats.Cid Cid, ulong Tsize, ulong ContentSize, bool IsDirectory);
