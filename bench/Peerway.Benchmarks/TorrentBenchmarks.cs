using System.Buffers;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Benchmarks;

/// <summary>BitTorrent hot paths: piece hashing (the ceiling of any client), peer-wire framing, piece picking.</summary>
[MemoryDiagnoser]
public class TorrentBenchmarks
{
    private readonly byte[] _piece = RandomNumberGenerator.GetBytes(512 * 1024);
    private readonly byte[] _hash = new byte[20];
    private readonly ArrayBufferWriter<byte> _writer = new(64 * 1024);
    private byte[] _pieceFrame = [];
    private byte[] _requestFrame = [];
    private Bitfield _all = new(1);

    [GlobalSetup]
    public void Setup()
    {
        var w = new ArrayBufferWriter<byte>();
        PeerWire.WritePiece(w, 7, 16384, _piece.AsSpan(0, 16384));
        _pieceFrame = w.WrittenSpan.ToArray();
        w.Clear();
        PeerWire.WriteBlockMessage(w, PeerMessageType.Request, 7, 16384, 16384);
        _requestFrame = w.WrittenSpan.ToArray();
        _all = new Bitfield(4096);
        _all.SetAll();
    }

    /// <summary>SHA-1 of one 512 KiB piece (bytes/s = 512 KiB / mean).</summary>
    [Benchmark]
    public int Sha1Piece512KiB() => SHA1.HashData(_piece, _hash);

    [Benchmark]
    public int DecodePieceMessage16KiB() => PeerWire.TryDecode(_pieceFrame, out var m, out _) ? m.Length : -1;

    [Benchmark]
    public int DecodeRequest() => PeerWire.TryDecode(_requestFrame, out var m, out _) ? m.Index : -1;

    [Benchmark]
    public int EncodeRequestBatch64()
    {
        _writer.Clear();
        for (var i = 0; i < 64; i++) PeerWire.WriteBlockMessage(_writer, PeerMessageType.Request, i, 0, 16384);
        return _writer.WrittenCount;
    }

    /// <summary>Rarest-first pick of 64 blocks from a fresh 4096-piece torrent (past the random-first phase).</summary>
    [Benchmark]
    public int PickRarestFirst64Blocks()
    {
        var have = new Bitfield(4096);
        for (var i = 0; i < PiecePicker.RandomFirstPieces; i++) have.Set(i);
        var picker = new PiecePicker(4096, _ => 256 * 1024, have, new Random(1));
        picker.AddAvailability(_all);
        return picker.Pick(this, _all, 64).Count;
    }
}
