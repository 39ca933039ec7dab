using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using Peerway.Core;
using Peerway.Core.Bencoding;

namespace Peerway.Torrent.Wire;

/// <summary>BEP 10 extended handshake (extended message id 0).</summary>
internal sealed record ExtendedHandshake
{
    /// <summary>BEP 10: the handshake is message id 0; others use ids the receiver chose in its "m".</summary>
    public const byte HandshakeId = 0;

    /// <summary>Our ids for the extensions we support (what we put in our "m").</summary>
    public const byte UtMetadataId = 1;
    public const byte UtPexId = 2;

    /// <summary>BEP 55 ut_holepunch.</summary>
    public const byte UtHolepunchId = 3;

    /// <summary>BEP 9: metadata larger than this is refused (libtorrent's limit is 4 MiB by default; ours is higher).</summary>
    public const int MaxMetadataSize = 16 * 1024 * 1024;

    public IReadOnlyDictionary<string, byte> Extensions { get; init; } = new Dictionary<string, byte>();
    public int? ListenPort { get; init; }
    public string? Client { get; init; }
    public int? RequestQueue { get; init; }
    public int? MetadataSize { get; init; }
    public IPAddress? YourIp { get; init; }

    public byte ExtensionId(string name) => Extensions.TryGetValue(name, out var id) ? id : (byte)0;

    public byte[] Encode()
    {
        var m = new BDictionary();
        foreach (var (name, id) in Extensions) m[name] = new BInteger(id);
        var d = new BDictionary { ["m"] = m };
        if (MetadataSize is { } size) d["metadata_size"] = new BInteger(size);
        if (ListenPort is { } p) d["p"] = new BInteger(p);
        if (RequestQueue is { } q) d["reqq"] = new BInteger(q);
        if (Client is not null) d["v"] = new BString(Client);
        if (YourIp is not null) d["yourip"] = new BString(YourIp.GetAddressBytes());
        return Bencode.Encode(d);
    }

    public static bool TryDecode(ReadOnlySpan<byte> payload, out ExtendedHandshake? handshake, out PeerWireError error)
    {
        handshake = null;
        if (!Bencode.TryDecode(payload, out var value, out _, BencodeLimits.Datagram) || value is not BDictionary d)
        {
            error = PeerWireError.BadExtension;
            return false;
        }

        var extensions = new Dictionary<string, byte>(StringComparer.Ordinal);
        if (d["m"] is BDictionary m)
        {
            foreach (var (k, v) in m.Entries)
            {
                // BEP 10: an id of 0 disables the extension; ids are one byte.
                if (v is BInteger { Value: > 0 and <= 255 } id) extensions[System.Text.Encoding.UTF8.GetString(k)] = (byte)id.Value;
            }
        }

        IPAddress? yourIp = d["yourip"] is BString { Value.Length: 4 or 16 } ip ? new IPAddress(ip.Value.Span) : null;
        handshake = new ExtendedHandshake
        {
            Extensions = extensions,
            ListenPort = d["p"] is BInteger { Value: > 0 and <= 65535 } port ? (int)port.Value : null,
            Client = (d["v"] as BString)?.Utf8,
            RequestQueue = d["reqq"] is BInteger { Value: > 0 and <= 100_000 } reqq ? (int)reqq.Value : null,
            MetadataSize = d["metadata_size"] is BInteger { Value: > 0 and <= MaxMetadataSize } ms ? (int)ms.Value : null,
            YourIp = yourIp,
        };
        error = PeerWireError.None;
        return true;
    }
}

/// <summary>BEP 9 ut_metadata message kinds.</summary>
internal enum MetadataMessageType
{
    Request = 0,
    Data = 1,
    Reject = 2,
}

/// <summary>BEP 9: metadata is exchanged in 16 KiB pieces; a data message is a bencoded dict followed by the piece.</summary>
internal readonly ref struct MetadataMessage
{
    /// <summary>BEP 9: "the metadata is handled in blocks of 16KiB".</summary>
    public const int PieceLength = 16 * 1024;

    public MetadataMessage(MetadataMessageType type, int piece, int totalSize, ReadOnlySpan<byte> data)
    {
        Type = type;
        Piece = piece;
        TotalSize = totalSize;
        Data = data;
    }

    public MetadataMessageType Type { get; }
    public int Piece { get; }
    public int TotalSize { get; }
    public ReadOnlySpan<byte> Data { get; }

    public static byte[] Encode(MetadataMessageType type, int piece, int totalSize = 0, ReadOnlySpan<byte> data = default)
    {
        var buffer = new ArrayBufferWriter<byte>(64 + data.Length);
        BencodeWriter.WriteRaw(buffer, "d8:msg_type"u8);
        BencodeWriter.WriteInteger(buffer, (int)type);
        BencodeWriter.WriteRaw(buffer, "5:piece"u8);
        BencodeWriter.WriteInteger(buffer, piece);
        if (type == MetadataMessageType.Data)
        {
            BencodeWriter.WriteRaw(buffer, "10:total_size"u8);
            BencodeWriter.WriteInteger(buffer, totalSize);
        }

        BencodeWriter.WriteRaw(buffer, "e"u8);
        BencodeWriter.WriteRaw(buffer, data);
        return buffer.WrittenSpan.ToArray();
    }

    public static bool TryDecode(ReadOnlySpan<byte> payload, out MetadataMessage message, out PeerWireError error)
    {
        message = default;
        error = PeerWireError.BadExtension;
        var reader = new BencodeReader(payload, BencodeLimits.Datagram);
        if (!reader.TryEnterDictionary()) return false;
        long type = -1, piece = -1, total = 0;
        while (!reader.TryReadEnd())
        {
            if (reader.Error != BencodeError.None || !reader.TryReadKey(out var key)) return false;
            if (key.SequenceEqual("msg_type"u8))
            {
                if (!reader.TryReadInteger(out type)) return false;
            }
            else if (key.SequenceEqual("piece"u8))
            {
                if (!reader.TryReadInteger(out piece)) return false;
            }
            else if (key.SequenceEqual("total_size"u8))
            {
                if (!reader.TryReadInteger(out total)) return false;
            }
            else if (!reader.TrySkipValue())
            {
                return false;
            }
        }

        if (reader.Depth != 0 || type is < 0 or > 2 || piece is < 0 or > ExtendedHandshake.MaxMetadataSize / PieceLength) return false;
        if (total is < 0 or > ExtendedHandshake.MaxMetadataSize) return false;
        var data = payload[reader.Position..];
        if (type != (long)MetadataMessageType.Data && data.Length != 0) return false;
        if (data.Length > PieceLength) return false;
        message = new MetadataMessage((MetadataMessageType)type, (int)piece, (int)total, data);
        error = PeerWireError.None;
        return true;
    }
}

/// <summary>BEP 11 ut_pex: peers added and dropped since the last message, in compact form.</summary>
internal sealed record PexMessage(IReadOnlyList<IPEndPoint> Added, IReadOnlyList<IPEndPoint> Dropped)
{
    /// <summary>BEP 11: a message should hold at most 50 added and 50 dropped peers; we accept a little slack.</summary>
    public const int MaxPeersPerMessage = 200;

    public byte[] Encode()
    {
        var d = new BDictionary
        {
            ["added"] = new BString(CompactPeers.Encode(Added, 4)),
            ["added.f"] = new BString(new byte[Added.Count(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)]),
            ["added6"] = new BString(CompactPeers.Encode(Added, 16)),
            ["added6.f"] = new BString(new byte[Added.Count(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)]),
            ["dropped"] = new BString(CompactPeers.Encode(Dropped, 4)),
            ["dropped6"] = new BString(CompactPeers.Encode(Dropped, 16)),
        };
        return Bencode.Encode(d);
    }

    public static bool TryDecode(ReadOnlySpan<byte> payload, out PexMessage? message, out PeerWireError error)
    {
        message = null;
        if (!Bencode.TryDecode(payload, out var value, out _, BencodeLimits.Datagram) || value is not BDictionary d)
        {
            error = PeerWireError.BadExtension;
            return false;
        }

        var added = new List<IPEndPoint>();
        var dropped = new List<IPEndPoint>();
        if (!CompactPeers.TryRead(d["added"], 4, added) || !CompactPeers.TryRead(d["added6"], 16, added) ||
            !CompactPeers.TryRead(d["dropped"], 4, dropped) || !CompactPeers.TryRead(d["dropped6"], 16, dropped) ||
            added.Count > MaxPeersPerMessage || dropped.Count > MaxPeersPerMessage)
        {
            error = PeerWireError.BadExtension;
            return false;
        }

        message = new PexMessage(added, dropped);
        error = PeerWireError.None;
        return true;
    }
}

/// <summary>BEP 23 / BEP 7 compact peer format: 4 (or 16) address bytes then a 2-byte port, network order.</summary>
public static class CompactPeers
{
    /// <summary>Writes one compact peer (6 bytes for IPv4, 18 for IPv6) into <paramref name="destination"/>.</summary>
    public static void Write(IPEndPoint peer, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(peer);
        peer.Address.TryWriteBytes(destination, out var n);
        BinaryPrimitives.WriteUInt16BigEndian(destination[n..], (ushort)peer.Port);
    }

    /// <summary>Encodes the peers whose address is <paramref name="addressLength"/> bytes (4 or 16); others are skipped.</summary>
    public static byte[] Encode(IEnumerable<IPEndPoint> peers, int addressLength)
    {
        var list = peers.Where(p => p.Address.GetAddressBytes().Length == addressLength).ToList();
        var bytes = new byte[list.Count * (addressLength + 2)];
        for (var i = 0; i < list.Count; i++) Write(list[i], bytes.AsSpan(i * (addressLength + 2)));
        return bytes;
    }

    /// <summary>Reads compact peers; null (absent) is fine, a wrong type or a ragged length is not.</summary>
    public static bool TryRead(BValue? value, int addressLength, List<IPEndPoint> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (value is null) return true;
        if (value is not BString s || s.Value.Length % (addressLength + 2) != 0) return false;
        return TryRead(s.Value.Span, addressLength, into);
    }

    /// <summary>Reads compact peers of <paramref name="addressLength"/>-byte addresses into <paramref name="into"/>; false when the length is not a multiple of the entry size.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, int addressLength, List<IPEndPoint> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        var entry = addressLength + 2;
        if (data.Length % entry != 0) return false;
        for (var i = 0; i < data.Length; i += entry)
        {
            var port = BinaryPrimitives.ReadUInt16BigEndian(data.Slice(i + addressLength, 2));
            if (port == 0) continue;
            into.Add(new IPEndPoint(new IPAddress(data.Slice(i, addressLength)), port));
        }

        return true;
    }
}

/// <summary>BEP 6: the canonical allowed-fast set for a peer's IP.</summary>
internal static class AllowedFast
{
    public static IReadOnlyList<int> Generate(IPAddress address, NodeId infoHash, int pieceCount, int k)
    {
        ArgumentNullException.ThrowIfNull(address);
        var result = new List<int>(k);
        if (pieceCount <= 0 || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork) return result;
        k = Math.Min(k, pieceCount);
        // BEP 6: x = 0xFFFFFF00 & ip; x = x || infohash; repeat x = SHA1(x), take 5 indices of 4 bytes each mod pieces.
        Span<byte> x = stackalloc byte[24];
        address.TryWriteBytes(x, out _);
        x[3] = 0;
        infoHash.WriteTo(x[4..]);
        Span<byte> hash = stackalloc byte[20];
        Span<byte> previous = stackalloc byte[20];
        var first = true;
        while (result.Count < k)
        {
            if (first) SHA1.HashData(x, hash);
            else SHA1.HashData(previous, hash);
            first = false;
            for (var i = 0; i < 5 && result.Count < k; i++)
            {
                var y = BinaryPrimitives.ReadUInt32BigEndian(hash[(i * 4)..]);
                var index = (int)(y % (uint)pieceCount);
                if (!result.Contains(index)) result.Add(index);
            }

            hash.CopyTo(previous);
        }

        return result;
    }
}
