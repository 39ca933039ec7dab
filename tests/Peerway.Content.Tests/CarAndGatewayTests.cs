using System.Text;
using FsCheck.Xunit;
using Peerway.Content.Blocks;
using Peerway.Content.Car;
using Peerway.Content.Gateway;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Tests;

public sealed class CarAndGatewayTests
{
    private static (MemoryBlockStore Store, ImportResult Root, byte[] Content) Sample(int length = 5000, int version = 0)
    {
        var store = new MemoryBlockStore();
        var content = new byte[length];
        new Random(length).NextBytes(content);
        var root = new UnixFsImporter(store, new ImportOptions { ChunkSize = 1000, CidVersion = version }).ImportBytes(content);
        return (store, root, content);
    }

    [Fact]
    public void Header_is_dag_cbor_with_roots_before_version()
    {
        var cid = Cid.Parse("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n");
        var header = CarCodec.EncodeHeader([cid]);
        // varint(56) a2 65"roots" 81 d8 2a 58 23 00 <34-byte CID> 67"version" 01
        var expected = "38" + "a2" + "65726f6f7473" + "81" + "d82a" + "5823" + "00" + Convert.ToHexStringLower(cid.Bytes)
            + "6776657273696f6e" + "01";
        Assert.Equal(expected, Convert.ToHexStringLower(header));
        Assert.Equal(ContentError.None, CarCodec.TryDecodeHeader(header, out var decoded, out var consumed));
        Assert.Equal(header.Length, consumed);
        Assert.Equal(cid, decoded!.Roots.Single());
    }

    [Fact]
    public void Header_errors_are_typed()
    {
        var header = CarCodec.EncodeHeader([]);
        Assert.Equal(ContentError.Truncated, CarCodec.TryDecodeHeader(header.AsSpan(..^1), out _, out _));
        var v2 = (byte[])header.Clone();
        v2[^1] = 0x02;
        Assert.Equal(ContentError.UnsupportedCarVersion, CarCodec.TryDecodeHeader(v2, out _, out _));
        Assert.Equal(ContentError.InvalidCarHeader, CarCodec.TryDecodeHeaderCbor(Convert.FromHexString("a1" + "63666f6f" + "01"), out _));
        Assert.Equal(ContentError.TooLarge, CarCodec.TryDecodeHeader(Convert.FromHexString("ffff7f"), out _, out _));
    }

    [Fact]
    public async Task Export_then_import_round_trips_every_block_in_depth_first_order()
    {
        var (store, root, content) = Sample();
        using var car = new MemoryStream();
        var exported = await CarWriter.ExportDagAsync(store, root.Cid, car, CancellationToken.None);
        Assert.True(exported.Ok, exported.ToString());
        Assert.Equal((ulong)store.Count, exported.Bytes);

        car.Position = 0;
        var reader = new CarReader(car);
        var (error, header) = await reader.ReadHeaderAsync(CancellationToken.None);
        Assert.Equal(ContentError.None, error);
        Assert.Equal(root.Cid, header!.Roots.Single());
        var (_, first) = await reader.ReadBlockAsync(CancellationToken.None);
        Assert.Equal(root.Cid, first!.Cid); // pre-order: the root comes first

        car.Position = 0;
        var target = new MemoryBlockStore();
        var (imported, _) = await CarWriter.ImportAsync(car, target, CancellationToken.None);
        Assert.True(imported.Ok, imported.ToString());
        using var output = new MemoryStream();
        Assert.True((await new UnixFsExporter(target).ExportFileAsync(root.Cid, output, CancellationToken.None)).Ok);
        Assert.Equal(content, output.ToArray());
    }

    [Fact]
    public async Task A_tampered_car_block_is_rejected()
    {
        var (store, root, _) = Sample();
        using var car = new MemoryStream();
        await CarWriter.ExportDagAsync(store, root.Cid, car, CancellationToken.None);
        var bytes = car.ToArray();
        bytes[^10] ^= 0x01; // inside the last block's data
        var (result, _) = await CarWriter.ImportAsync(new MemoryStream(bytes), new MemoryBlockStore(), CancellationToken.None);
        Assert.Equal(ContentError.HashMismatch, result.Error);
    }

    [Property(MaxTest = 2000)]
    public bool Fuzz_header_decoder_never_throws(byte[] data)
    {
        var error = CarCodec.TryDecodeHeader(data ?? [], out var header, out var consumed);
        return error == ContentError.None ? header is not null && consumed <= data!.Length && header.Roots.Count <= CarCodec.MaxRoots : header is null;
    }

    [Property(MaxTest = 2000)]
    public bool Fuzz_section_decoders_never_throw(byte[] data)
    {
        data ??= [];
        var lengthError = CarCodec.TryReadSectionLength(data, out var length, out _);
        var bodyError = CarCodec.TryDecodeSectionBody(data, out var cid, out var offset);
        return (lengthError != ContentError.None || length is > 0 and <= CarCodec.MaxSectionLength)
            && (bodyError != ContentError.None || (cid is not null && offset <= data.Length));
    }

    [Property(MaxTest = 300)]
    public bool Fuzz_mutated_car_streams_never_throw(int position, byte value)
    {
        var (store, root, _) = Sample(2500);
        using var car = new MemoryStream();
#pragma warning disable VSTHRD002 // an FsCheck property is synchronous; the work runs on memory streams and stores
        CarWriter.ExportDagAsync(store, root.Cid, car, CancellationToken.None).GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
        var bytes = car.ToArray();
        bytes[(int)((uint)position % bytes.Length)] = value;
#pragma warning disable VSTHRD002 // an FsCheck property is synchronous; the work runs on memory streams and stores
        var (result, _) = CarWriter.ImportAsync(new MemoryStream(bytes), new MemoryBlockStore(), CancellationToken.None).GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
        return result.Ok || result.Error != ContentError.None;
    }

    private static async Task<(GatewayResponse Response, byte[] Body)> GetAsync(TrustlessGateway gateway, string path, string? accept = null, string? query = null, string? ifNoneMatch = null, string method = "GET")
    {
        var response = gateway.Handle(new GatewayRequest(method, path, query, accept, ifNoneMatch));
        using var body = new MemoryStream();
        if (response.WriteBody is not null)
        {
            await response.WriteBody(body, CancellationToken.None);
        }

        return (response, body.ToArray());
    }

    [Fact]
    public async Task Gateway_serves_raw_blocks_cars_and_files()
    {
        var (store, root, content) = Sample(version: 1);
        var gateway = new TrustlessGateway(store);

        var (raw, block) = await GetAsync(gateway, $"/ipfs/{root.Cid}", accept: "application/vnd.ipld.raw");
        Assert.Equal(200, raw.Status);
        Assert.Equal(TrustlessGateway.RawType, raw.ContentType);
        Assert.Equal($"\"{root.Cid}.raw\"", raw.Headers["ETag"]);
        Assert.True(root.Cid.Multihash.Matches(block));

        var (car, carBytes) = await GetAsync(gateway, $"/ipfs/{root.Cid}", query: "?format=car");
        Assert.Equal(TrustlessGateway.CarResponseType, car.ContentType);
        var (imported, header) = await CarWriter.ImportAsync(new MemoryStream(carBytes), new MemoryBlockStore(), CancellationToken.None);
        Assert.True(imported.Ok);
        Assert.Equal(root.Cid, header!.Roots.Single());

        var (file, bytes) = await GetAsync(gateway, $"/ipfs/{root.Cid}");
        Assert.Equal(200, file.Status);
        Assert.Equal(content.Length, file.ContentLength);
        Assert.Equal(content, bytes);

        var (notModified, _) = await GetAsync(gateway, $"/ipfs/{root.Cid}", accept: "application/vnd.ipld.raw", ifNoneMatch: $"\"{root.Cid}.raw\"");
        Assert.Equal(304, notModified.Status);
    }

    [Fact]
    public async Task Gateway_car_with_dag_scope_block_holds_only_the_root()
    {
        var (store, root, _) = Sample();
        var (response, bytes) = await GetAsync(new TrustlessGateway(store), $"/ipfs/{root.Cid}", query: "?format=car&dag-scope=block");
        Assert.Equal(200, response.Status);
        Assert.Equal(bytes.Length, response.ContentLength);
        var (imported, header) = await CarWriter.ImportAsync(new MemoryStream(bytes), new MemoryBlockStore(), CancellationToken.None);
        Assert.True(imported.Ok);
        Assert.Equal(1UL, imported.Bytes);
        Assert.Equal(root.Cid, header!.Roots.Single());
    }

    [Fact]
    public async Task Gateway_never_serves_a_corrupted_block()
    {
        var (store, root, _) = Sample(version: 1);
        Assert.Equal(ContentError.None, new UnixFsExporter(store).TryLoad(root.Cid, out var node));
        var leaf = node!.Pb!.Links[0].Hash;
        store.Corrupt(leaf, new byte[1000]);
        var gateway = new TrustlessGateway(store);
        Assert.Equal(500, (await GetAsync(gateway, $"/ipfs/{leaf}", accept: "application/vnd.ipld.raw")).Response.Status);
        Assert.Equal(500, (await GetAsync(gateway, $"/ipfs/{root.Cid}", accept: "application/vnd.ipld.car")).Response.Status);
        await Assert.ThrowsAsync<IOException>(() => GetAsync(gateway, $"/ipfs/{root.Cid}"));
    }

    [Theory]
    [InlineData("/ipfs/", 400)]
    [InlineData("/ipfs/not-a-cid", 400)]
    [InlineData("/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", 404)]
    [InlineData("/ipns/example.com", 404)]
    public async Task Gateway_errors_have_the_right_status(string path, int status)
    {
        var (store, _, _) = Sample();
        var (response, body) = await GetAsync(new TrustlessGateway(store), path, accept: "application/vnd.ipld.raw");
        Assert.Equal(status, response.Status);
        Assert.NotEmpty(Encoding.UTF8.GetString(body));
    }

    [Fact]
    public async Task Gateway_refuses_other_methods_and_formats()
    {
        var (store, root, _) = Sample();
        var gateway = new TrustlessGateway(store);
        Assert.Equal(405, (await GetAsync(gateway, $"/ipfs/{root.Cid}", method: "POST")).Response.Status);
        Assert.Equal(400, (await GetAsync(gateway, $"/ipfs/{root.Cid}", query: "?format=tar")).Response.Status);
    }

    [Fact]
    public async Task Gateway_resolves_paths_in_directories()
    {
        var store = new MemoryBlockStore();
        var importer = new UnixFsImporter(store, new ImportOptions());
        var file = importer.ImportBytes("hello"u8);
        var dir = importer.ImportDirectory([new DirectoryEntry("hello world.txt", file)]);
        var (response, body) = await GetAsync(new TrustlessGateway(store), $"/ipfs/{dir.Cid}/hello%20world.txt");
        Assert.Equal(200, response.Status);
        Assert.Equal("text/plain; charset=utf-8", response.ContentType);
        Assert.Equal("hello"u8.ToArray(), body);
        var (listing, text) = await GetAsync(new TrustlessGateway(store), $"/ipfs/{dir.Cid}");
        Assert.Equal(200, listing.Status);
        Assert.Contains(file.Cid.ToString(), Encoding.UTF8.GetString(text), StringComparison.Ordinal);
    }

    private class DictionarySource(IReadOnlyDictionary<Cid, byte[]> blocks) : IBlockSource
    {
        public Task<byte[]?> FetchAsync(Cid cid, CancellationToken cancellationToken) =>
            Task.FromResult(blocks.TryGetValue(cid, out var b) ? b : null);
    }

    /// <summary>A source that says it checked every block itself (as the Bitswap client does).</summary>
    private sealed class SelfVerifyingSource(IReadOnlyDictionary<Cid, byte[]> blocks) : DictionarySource(blocks), IBlockSource
    {
        public bool VerifiesBlocks => true;
    }

    private static Dictionary<Cid, byte[]> Blocks(MemoryBlockStore store, Cid root)
    {
        var blocks = new Dictionary<Cid, byte[]>();
        var walk = DagWalker.WalkAsync(store, root, (cid, block, _) =>
        {
            blocks[cid] = block;
            return ValueTask.CompletedTask;
        }, CancellationToken.None);
        Assert.True(walk.IsCompletedSuccessfully);
        return blocks;
    }

    [Fact]
    public async Task Fetcher_copies_a_dag_from_an_honest_source_and_rejects_a_lying_one()
    {
        var (store, root, content) = Sample();
        var blocks = Blocks(store, root.Cid);

        var target = new MemoryBlockStore();
        var fetched = await DagFetcher.FetchDagAsync(new DictionarySource(blocks), target, root.Cid, CancellationToken.None);
        Assert.True(fetched.Ok, fetched.ToString());
        Assert.Equal((ulong)blocks.Count, fetched.Bytes);
        using var output = new MemoryStream();
        Assert.True((await new UnixFsExporter(target).ExportFileAsync(root.Cid, output, CancellationToken.None)).Ok);
        Assert.Equal(content, output.ToArray());

        var lying = blocks.ToDictionary(kv => kv.Key, kv => kv.Key.Equals(root.Cid) ? kv.Value : [.. kv.Value, 0]);
        var poisoned = new MemoryBlockStore();
        var result = await DagFetcher.FetchDagAsync(new DictionarySource(lying), poisoned, root.Cid, CancellationToken.None);
        Assert.Equal(ContentError.HashMismatch, result.Error);
        Assert.Equal(1, poisoned.Count); // only the honest root was stored
    }

    [Fact]
    public async Task Fetcher_takes_a_self_verifying_sources_word_and_hashes_every_block_of_any_other()
    {
        var (store, root, _) = Sample(version: 1);
        var blocks = Blocks(store, root.Cid);
        var leaf = blocks.Keys.First(c => c.Codec == Cid.RawCodec);
        // The same wrong leaf: a source that vouches for its blocks (it hashed them itself) is not hashed again, so it is
        // stored; from a source that does not vouch, it is refused.
        var wrong = blocks.ToDictionary(kv => kv.Key, kv => kv.Key.Equals(leaf) ? [.. kv.Value, 0] : kv.Value);
        var trusted = new MemoryBlockStore();
        Assert.True((await DagFetcher.FetchDagAsync(new SelfVerifyingSource(wrong), trusted, root.Cid, 4, CancellationToken.None)).Ok);
        Assert.Equal(blocks.Count, trusted.Count);
        var checkedStore = new MemoryBlockStore();
        var refused = await DagFetcher.FetchDagAsync(new DictionarySource(wrong), checkedStore, root.Cid, 4, CancellationToken.None);
        Assert.Equal(ContentError.HashMismatch, refused.Error);
        Assert.Equal(leaf, refused.At);
    }
}
