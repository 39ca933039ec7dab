using Peerway.Net;

namespace Peerway.Torrent;

/// <summary>Which of TCP and uTP a <see cref="TorrentClient"/> listens on and dials (<c>--transport tcp|utp|both</c>).
/// Transports of other kinds (virtual, WebRTC) are not affected.</summary>
[Flags]
public enum PeerTransports
{
    /// <summary>BitTorrent over TCP (BEP 3).</summary>
    Tcp = 1,

    /// <summary>BitTorrent over uTP (BEP 29).</summary>
    Utp = 2,

    /// <summary>Both: uTP dialled first, TCP at once when it fails (libtorrent's order), both listened on.</summary>
    Both = Tcp | Utp,
}

internal static class PeerTransportsExtensions
{
    /// <summary>True when a transport of <paramref name="kind"/> is used under <paramref name="allowed"/>.</summary>
    public static bool Allows(this PeerTransports allowed, StreamTransportKind kind) => kind switch
    {
        StreamTransportKind.Tcp => (allowed & PeerTransports.Tcp) != 0,
        StreamTransportKind.Utp => (allowed & PeerTransports.Utp) != 0,
        _ => true,
    };
}
