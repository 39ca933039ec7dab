using System.Buffers;
using BenchmarkDotNet.Attributes;
using Peerway.Core.Bencoding;

namespace Peerway.Benchmarks;

/// <summary>Strict bencode: zero-copy reader walk vs. tree decode, and canonical encode.</summary>
[MemoryDiagnoser]
public class BencodeBenchmarks
{
    private byte[] _document = [];
    private BValue _tree = new BInteger(0);
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);

    [GlobalSetup]
    public void Setup()
    {
        // A .torrent-like document: nested dictionaries, a list, strings and integers (~1 KB).
        var info = new BDictionary();
        info.Add("length", new BInteger(1_048_576));
        info.Add("name", new BString("example.iso"));
        info.Add("piece length", new BInteger(262_144));
        info.Add("pieces", new BString(new byte[80]));
        var root = new BDictionary();
        root.Add("announce", new BString("udp://tracker.example:6969"));
        root.Add("announce-list", new BList(Enumerable.Range(0, 20).Select(i => (BValue)new BList([new BString($"udp://t{i}.example:6969")])).ToList()));
        root.Add("creation date", new BInteger(1_700_000_000));
        root.Add("info", info);
        _tree = root;
        _document = Bencode.Encode(root);
    }

    [Benchmark(Description = "reader: skip whole document")]
    public bool ReaderSkip()
    {
        var reader = new BencodeReader(_document);
        return reader.TrySkipValue();
    }

    [Benchmark(Description = "decode to BValue tree")]
    public BValue? DecodeTree() => Bencode.TryDecode(_document, out var v, out _) ? v : null;

    [Benchmark(Description = "encode BValue tree")]
    public int EncodeTree()
    {
        _buffer.ResetWrittenCount();
        Bencode.Write(_buffer, _tree);
        return _buffer.WrittenCount;
    }
}
