namespace Peerway.Libp2p.Kad;

/// <summary>The message types of <c>/ipfs/kad/1.0.0</c> (libp2p specs, kad-dht/README.md, the <c>Message</c> protobuf).</summary>
internal enum KadMessageType
{
    PutValue = 0,
    GetValue = 1,
    AddProvider = 2,
    GetProviders = 3,
    FindNode = 4,
    Ping = 5,
}

/// <summary>A peer as the DHT carries it: its id and the addresses it can be dialled on (binary multiaddrs).</summary>
internal sealed record KadPeer(PeerId Id, IReadOnlyList<Multiaddr> Addresses);

/// <summary>
/// One Kademlia DHT message (kad-dht/README.md, "RPC messages"): type, key, closer peers, provider peers; the record
/// field of PUT_VALUE/GET_VALUE is kept as bytes only. Decoding is bounded and never throws: peers and addresses that do
/// not decode are skipped, as go-libp2p-kad-dht does, a malformed message is a typed error.
/// </summary>
internal sealed class KadMessage
{
    /// <summary>go-libp2p-kad-dht and js-libp2p's limit on one message (4 MiB).</summary>
    public const int MaxMessage = 4 * 1024 * 1024;

    /// <summary>Bound on peers decoded from one list.</summary>
    public const int MaxPeers = 64;

    /// <summary>Bound on addresses kept per peer.</summary>
    public const int MaxAddresses = 16;

    public KadMessageType Type { get; set; }

    public byte[] Key { get; set; } = [];

    public byte[]? Record { get; set; }

    public List<KadPeer> CloserPeers { get; } = [];

    public List<KadPeer> ProviderPeers { get; } = [];

    public byte[] Encode()
    {
        var w = new ProtoWriter().Varint(1, (ulong)Type);
        if (Key.Length > 0) w.Bytes(2, Key);
        if (Record is not null) w.Bytes(3, Record);
        foreach (var p in CloserPeers) w.Bytes(8, EncodePeer(p));
        foreach (var p in ProviderPeers) w.Bytes(9, EncodePeer(p));
        return w.ToArray();
    }

    private static byte[] EncodePeer(KadPeer peer)
    {
        var w = new ProtoWriter().Bytes(1, peer.Id.Bytes);
        foreach (var a in peer.Addresses) w.Bytes(2, a.Bytes);
        return w.ToArray();
    }

    public static Libp2pError TryDecode(ReadOnlySpan<byte> bytes, out KadMessage? message)
    {
        message = null;
        if (bytes.Length > MaxMessage) return Libp2pError.TooLong;
        var m = new KadMessage();
        var fields = new ProtoFields(bytes);
        while (fields.Next(out var f))
        {
            switch (f.Number, f.WireType)
            {
                case (1, 0):
                    if (f.Varint > (ulong)KadMessageType.Ping) return Libp2pError.UnknownProtocol;
                    m.Type = (KadMessageType)f.Varint;
                    break;
                case (2, 2):
                    m.Key = f.Bytes.ToArray();
                    break;
                case (3, 2):
                    m.Record = f.Bytes.ToArray();
                    break;
                case (8, 2) or (9, 2):
                    var list = f.Number == 8 ? m.CloserPeers : m.ProviderPeers;
                    if (list.Count == MaxPeers) break;
                    var error = DecodePeer(f.Bytes, out var peer);
                    if (error != Libp2pError.None) return error;
                    if (peer is not null) list.Add(peer);
                    break;
            }
        }

        if (fields.Error != Libp2pError.None) return fields.Error;
        message = m;
        return Libp2pError.None;
    }

    private static Libp2pError DecodePeer(ReadOnlySpan<byte> bytes, out KadPeer? peer)
    {
        peer = null;
        PeerId? id = null;
        var addresses = new List<Multiaddr>();
        var fields = new ProtoFields(bytes);
        while (fields.Next(out var f))
        {
            if (f.WireType != 2) continue;
            if (f.Number == 1 && PeerId.TryDecode(f.Bytes, out var decoded) == Libp2pError.None) id = decoded;
            else if (f.Number == 2 && addresses.Count < MaxAddresses && Multiaddr.TryDecode(f.Bytes, out var a) == Libp2pError.None) addresses.Add(a!);
        }

        if (fields.Error != Libp2pError.None) return fields.Error;
        if (id is not null) peer = new KadPeer(id, addresses);
        return Libp2pError.None;
    }
}
