using Peerway.Core.Multiformats;

namespace Peerway.Libp2p.Protocols;

/// <summary>A Bitswap wantlist entry (specs/bitswap-protocol.md, 1.2.0).</summary>
internal readonly record struct WantEntry(Cid Cid, int Priority, bool Cancel, bool WantHave, bool SendDontHave);

/// <summary>
/// One Bitswap message (ipfs/specs bitswap-protocol.md; the protobuf of go-bitswap's message.proto): a wantlist
/// (entries: CID, priority, cancel, want type Block/Have, sendDontHave; full), blocks as 1.1+ payloads (CID prefix and
/// data), block presences (Have/DontHave) and pending bytes. Decoding is bounded and never throws.
/// </summary>
internal sealed class BitswapMessage
{
    public const string Protocol120 = "/ipfs/bitswap/1.2.0";
    public const string Protocol110 = "/ipfs/bitswap/1.1.0";
    public const string Protocol100 = "/ipfs/bitswap/1.0.0";
    public const string Protocol = "/ipfs/bitswap";

    /// <summary>go-bitswap and Helia refuse messages over 4 MiB.</summary>
    public const int MaxMessage = 4 * 1024 * 1024;

    /// <summary>Bound on wantlist entries in one message.</summary>
    public const int MaxEntries = 1024;

    public List<WantEntry> Wants { get; } = [];

    public bool FullWantlist { get; set; }

    public List<(Cid Cid, byte[] Data)> Blocks { get; } = [];

    public List<(Cid Cid, bool Have)> Presences { get; } = [];

    public bool IsEmpty => Wants.Count == 0 && Blocks.Count == 0 && Presences.Count == 0;

    public byte[] Encode()
    {
        var w = new ProtoWriter();
        if (Wants.Count > 0 || FullWantlist)
        {
            var list = new ProtoWriter();
            foreach (var e in Wants)
            {
                var entry = new ProtoWriter().Bytes(1, e.Cid.Bytes).Varint(2, (ulong)e.Priority);
                if (e.Cancel) entry.Varint(3, 1);
                if (e.WantHave) entry.Varint(4, 1);
                if (e.SendDontHave) entry.Varint(5, 1);
                list.Bytes(1, entry.Written);
            }

            if (FullWantlist) list.Varint(2, 1);
            w.Bytes(1, list.Written);
        }

        foreach (var (cid, data) in Blocks)
        {
            w.Bytes(3, new ProtoWriter().Bytes(1, Prefix(cid)).Bytes(2, data).Written);
        }

        foreach (var (cid, have) in Presences)
        {
            w.Bytes(4, new ProtoWriter().Bytes(1, cid.Bytes).Varint(2, have ? 0u : 1u).Written);
        }

        return w.ToArray();
    }

    /// <summary>The CID prefix of a 1.1 payload: version, codec, multihash code and digest length, as varints.</summary>
    public static byte[] Prefix(Cid cid)
    {
        var buffer = new byte[40];
        var n = Varint.Write((ulong)cid.Version, buffer);
        n += Varint.Write(cid.Version == 0 ? 0x70u : cid.Codec, buffer.AsSpan(n));
        n += Varint.Write(cid.Multihash.Code, buffer.AsSpan(n));
        n += Varint.Write((ulong)cid.Multihash.Digest.Length, buffer.AsSpan(n));
        return buffer[..n];
    }

    public static Libp2pError TryDecode(ReadOnlySpan<byte> message, out BitswapMessage? result)
    {
        result = null;
        if (message.Length > MaxMessage) return Libp2pError.TooLong;
        var m = new BitswapMessage();
        var fields = new ProtoFields(message);
        while (fields.Next(out var f))
        {
            if (f.WireType != 2) continue;
            Libp2pError error;
            switch (f.Number)
            {
                case 1:
                    error = DecodeWantlist(f.Bytes, m);
                    break;
                case 2:
                    // 1.0.0 blocks: raw bytes, CIDv0 (sha2-256 dag-pb) implied.
                    m.Blocks.Add((Cid.V0(Multihash.Sha256(f.Bytes)), f.Bytes.ToArray()));
                    error = Libp2pError.None;
                    break;
                case 3:
                    error = DecodePayload(f.Bytes, m);
                    break;
                case 4:
                    error = DecodePresence(f.Bytes, m);
                    break;
                default:
                    error = Libp2pError.None;
                    break;
            }

            if (error != Libp2pError.None) return error;
        }

        if (fields.Error != Libp2pError.None) return fields.Error;
        result = m;
        return Libp2pError.None;
    }

    private static Libp2pError DecodeWantlist(ReadOnlySpan<byte> bytes, BitswapMessage m)
    {
        var fields = new ProtoFields(bytes);
        while (fields.Next(out var f))
        {
            if (f.Number == 2 && f.WireType == 0) m.FullWantlist = f.Varint != 0;
            if (f.Number != 1 || f.WireType != 2) continue;
            if (m.Wants.Count == MaxEntries) return Libp2pError.TooLong;
            Cid? cid = null;
            var (priority, cancel, have, dontHave) = (1, false, false, false);
            var entry = new ProtoFields(f.Bytes);
            while (entry.Next(out var e))
            {
                switch (e.Number, e.WireType)
                {
                    case (1, 2):
                        if (Cid.TryDecode(e.Bytes, out cid) != MultiformatError.None) return Libp2pError.BadAddress;
                        break;
                    case (2, 0):
                        priority = (int)Math.Min(e.Varint, int.MaxValue);
                        break;
                    case (3, 0):
                        cancel = e.Varint != 0;
                        break;
                    case (4, 0):
                        have = e.Varint == 1;
                        break;
                    case (5, 0):
                        dontHave = e.Varint != 0;
                        break;
                }
            }

            if (entry.Error != Libp2pError.None) return entry.Error;
            if (cid is null) return Libp2pError.Truncated;
            m.Wants.Add(new WantEntry(cid, priority, cancel, have, dontHave));
        }

        return fields.Error;
    }

    private static Libp2pError DecodePayload(ReadOnlySpan<byte> bytes, BitswapMessage m)
    {
        ReadOnlySpan<byte> prefix = default, data = default;
        var fields = new ProtoFields(bytes);
        while (fields.Next(out var f))
        {
            if (f.WireType != 2) continue;
            if (f.Number == 1) prefix = f.Bytes;
            else if (f.Number == 2) data = f.Bytes;
        }

        if (fields.Error != Libp2pError.None) return fields.Error;
        // The prefix names how to hash the data; only sha2-256 and identity are accepted (as Multihash is).
        var values = new ulong[3];
        var rest = prefix;
        for (var i = 0; i < 3; i++)
        {
            if (Varint.TryRead(rest, out values[i], out var n) != MultiformatError.None) return Libp2pError.BadVarint;
            rest = rest[n..];
        }

        Multihash mh;
        if (values[2] == Multihash.Sha256Code) mh = Multihash.Sha256(data);
        else if (values[2] == Multihash.IdentityCode && data.Length <= Multihash.MaxIdentityLength) mh = Multihash.Identity(data);
        else return Libp2pError.UnsupportedKey;
        if (values[0] > 1 || (values[0] == 0 && values[2] != Multihash.Sha256Code)) return Libp2pError.UnsupportedKey;
        m.Blocks.Add((values[0] == 0 ? Cid.V0(mh) : Cid.V1(values[1], mh), data.ToArray()));
        return Libp2pError.None;
    }

    private static Libp2pError DecodePresence(ReadOnlySpan<byte> bytes, BitswapMessage m)
    {
        Cid? cid = null;
        var have = true;
        var fields = new ProtoFields(bytes);
        while (fields.Next(out var f))
        {
            if (f.Number == 1 && f.WireType == 2 && Cid.TryDecode(f.Bytes, out cid) != MultiformatError.None) return Libp2pError.BadAddress;
            if (f.Number == 2 && f.WireType == 0) have = f.Varint == 0;
        }

        if (fields.Error != Libp2pError.None) return fields.Error;
        if (cid is null) return Libp2pError.Truncated;
        m.Presences.Add((cid, have));
        return Libp2pError.None;
    }
}
