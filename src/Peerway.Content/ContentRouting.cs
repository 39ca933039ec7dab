using System.Security.Cryptography;
using Peerway.Core;
using Peerway.Core.Multiformats;

namespace Peerway.Content;

/// <summary>
/// How content is found in the Peerway (Mainline) DHT. The DHT key of a CID is SHA-1 of its multihash bytes — 160 bits,
/// like a BitTorrent info-hash, so BEP 5 get_peers/announce_peer carry it unchanged. Keying by the multihash (not the
/// whole CID) makes a CIDv0 and its CIDv1 share providers, as IPFS provider records do. A provider announces each root
/// it holds with the TCP port of its trustless HTTP gateway; a fetcher turns each peer ip:port into the gateway
/// http://ip:port and verifies every block it gets against the CID.
/// </summary>
public static class ContentRouting
{
    /// <summary>The DHT key of <paramref name="cid"/>: SHA-1 of its multihash bytes, so a CIDv0 and its CIDv1 have the same key.</summary>
    public static NodeId DhtKey(Cid cid)
    {
        ArgumentNullException.ThrowIfNull(cid);
        Span<byte> digest = stackalloc byte[NodeId.Length];
        SHA1.HashData(cid.Multihash.Bytes, digest);
        return new NodeId(digest);
    }
}
