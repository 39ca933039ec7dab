using BenchmarkDotNet.Attributes;
using Peerway.Content;
using Peerway.Content.Blocks;
using Peerway.Content.DagPb;
using Peerway.Content.Hashing;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Benchmarks;

/// <summary>
/// Content-addressing hot paths: varint, CID parse/format, dag-pb encode/decode, a 256 KiB leaf import, and SHA-256 of
/// 16 chunks one by one (OpenSSL, SHA-NI) vs 16 lanes at once (<see cref="Sha256x16"/>, AVX-512).
/// </summary>
[MemoryDiagnoser]
public class ContentBenchmarks
{
    private readonly byte[] _varint = [0xac, 0x02];
    private readonly byte[] _chunk = new byte[ImportOptions.DefaultChunkSize];
    private string _v0Text = string.Empty;
    private string _v1Text = string.Empty;
    private byte[] _v1Bytes = [];
    private PbNode _parent = new([], null);
    private byte[] _parentBlock = [];
    private Cid _cid = Cid.V0(Multihash.Sha256([]));
    private readonly byte[] _sixteenChunks = new byte[Sha256x16.Lanes * ImportOptions.DefaultChunkSize];
    private readonly byte[] _digests = new byte[Sha256x16.Lanes * Sha256x16.DigestSize];

    [GlobalSetup]
    public void Setup()
    {
        new Random(1).NextBytes(_chunk);
        new Random(2).NextBytes(_sixteenChunks);
        _cid = Cid.V0(Multihash.Sha256("benchmark"u8));
        _v0Text = _cid.ToString();
        _v1Text = _cid.ToV1().ToString();
        _v1Bytes = _cid.ToV1().ToArray();
        // A full balanced-layout parent: 174 links with empty names and Tsize, UnixFS File data with 174 blocksizes.
        var links = Enumerable.Range(0, ImportOptions.DefaultMaxLinksPerNode)
            .Select(i => new PbLink(Cid.V0(Multihash.Sha256(BitConverter.GetBytes(i))), string.Empty, 262_158))
            .ToList();
        var data = new UnixFsData
        {
            Type = UnixFsType.File,
            FileSize = 174UL * 262_144,
            BlockSizes = Enumerable.Repeat(262_144UL, 174).ToList(),
        }.Encode();
        _parent = new PbNode(links, data);
        _parentBlock = DagPbCodec.Encode(_parent);
    }

    [Benchmark]
    public ulong VarintRead()
    {
        Varint.TryRead(_varint, out var value, out _);
        return value;
    }

    [Benchmark]
    public Cid? ParseCidV0() => Cid.TryParse(_v0Text, out var cid) == MultiformatError.None ? cid : null;

    [Benchmark]
    public Cid? ParseCidV1() => Cid.TryParse(_v1Text, out var cid) == MultiformatError.None ? cid : null;

    [Benchmark]
    public Cid? DecodeBinaryCid() => Cid.TryDecode(_v1Bytes, out var cid) == MultiformatError.None ? cid : null;

    [Benchmark]
    public string FormatCidV1() => _cid.ToV1().ToString();

    [Benchmark]
    public byte[] EncodeDagPbParent174() => DagPbCodec.Encode(_parent);

    [Benchmark]
    public PbNode? DecodeDagPbParent174() => DagPbCodec.TryDecode(_parentBlock, out var node) == ContentError.None ? node : null;

    [Benchmark]
    public Cid ImportOneChunkV0() => new UnixFsImporter(new NullBlockStore(), new ImportOptions()).ImportBytes(_chunk).Cid;

    /// <summary>4 MiB: 16 raw leaves hashed one after the other by OpenSSL (what the importer does without AVX-512).</summary>
    [Benchmark]
    public byte Sha256SixteenChunksOneByOne()
    {
        for (var i = 0; i < Sha256x16.Lanes; i++)
        {
            System.Security.Cryptography.SHA256.HashData(
                _sixteenChunks.AsSpan(i * ImportOptions.DefaultChunkSize, ImportOptions.DefaultChunkSize), _digests.AsSpan(i * 32, 32));
        }

        return _digests[0];
    }

    /// <summary>4 MiB: the same 16 raw leaves in the 16 lanes of AVX-512 registers.</summary>
    [Benchmark]
    public byte Sha256SixteenChunksSixteenLanes()
    {
        Sha256x16.Hash([], _sixteenChunks, ImportOptions.DefaultChunkSize, ImportOptions.DefaultChunkSize, [], _digests);
        return _digests[0];
    }
}
