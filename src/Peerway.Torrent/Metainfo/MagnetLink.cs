using System.Globalization;
using System.Net;
using System.Text;
using Peerway.Core;

namespace Peerway.Torrent.Metainfo;

/// <summary>Why a magnet URI was rejected.</summary>
public enum MagnetError
{
    /// <summary>A valid magnet link.</summary>
    None = 0,
    /// <summary>Not a "magnet:?" URI, or longer than the limit.</summary>
    NotMagnet,
    /// <summary>No "xt=urn:btih:" parameter.</summary>
    MissingInfoHash,
    /// <summary>The btih is neither 40 hex digits nor 32 base32 characters.</summary>
    InvalidInfoHash,
    /// <summary>A "tr" parameter is not an http/https/udp URL.</summary>
    InvalidTracker,
    /// <summary>An "x.pe" parameter is not host:port.</summary>
    InvalidPeer,
    /// <summary>Bad percent-encoding.</summary>
    InvalidEncoding,
    /// <summary>BEP 52: only a v2 "xt=urn:btmh:" (SHA-256 multihash) and no v1 btih; Peerway speaks v1 only.</summary>
    V2Only,
}

/// <summary>Text for <see cref="MagnetError"/> values.</summary>
public static class MagnetErrors
{
    /// <summary>One clear phrase for a user (after "invalid magnet link: ").</summary>
    public static string Describe(this MagnetError error) => error switch
    {
        MagnetError.None => "valid",
        MagnetError.NotMagnet => "not a magnet:? link, or too long",
        MagnetError.MissingInfoHash => "no info-hash (an xt=urn:btih: parameter)",
        MagnetError.InvalidInfoHash => "the info-hash (xt=urn:btih:) is neither 40 hex digits nor 32 base32 characters",
        MagnetError.InvalidTracker => "a tracker (tr=) is not an http, https, udp, ws or wss URL",
        MagnetError.InvalidPeer => "a peer (x.pe=) is not HOST:PORT",
        MagnetError.InvalidEncoding => "bad percent-encoding",
        MagnetError.V2Only => "a BitTorrent v2-only link (urn:btmh, BEP 52); Peerway fetches v1 and hybrid torrents (urn:btih)",
        _ => error.ToString(),
    };
}

/// <summary>A BEP 9 magnet link: <c>magnet:?xt=urn:btih:&lt;info-hash&gt;&amp;dn=&lt;name&gt;&amp;tr=&lt;tracker&gt;&amp;x.pe=&lt;peer&gt;</c>.</summary>
public sealed record MagnetLink(NodeId InfoHash, string? DisplayName, IReadOnlyList<string> Trackers, IReadOnlyList<string> Peers)
{
    /// <summary>Longest magnet URI accepted (implementation limit).</summary>
    public const int MaxLength = 64 * 1024;

    private const string Base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    /// <summary>Parses a BEP 9 magnet URI (<c>magnet:?xt=urn:btih:…</c>, with optional dn, tr and x.pe); false with <paramref name="error"/> set when it is not valid.</summary>
    public static bool TryParse(string? uri, out MagnetLink? magnet, out MagnetError error)
    {
        magnet = null;
        if (uri is null || uri.Length > MaxLength || !uri.StartsWith("magnet:?", StringComparison.OrdinalIgnoreCase))
        {
            error = MagnetError.NotMagnet;
            return false;
        }

        NodeId? hash = null;
        var hasBtmh = false;
        string? name = null;
        var trackers = new List<string>();
        var peers = new List<string>();
        foreach (var part in uri["magnet:?".Length..].Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) continue;
            var key = part[..eq];
            if (!TryUnescape(part[(eq + 1)..], out var value))
            {
                error = MagnetError.InvalidEncoding;
                return false;
            }

            switch (key)
            {
                case "xt" when value.StartsWith("urn:btih:", StringComparison.OrdinalIgnoreCase):
                    if (!TryParseBtih(value.AsSpan("urn:btih:".Length), out var h))
                    {
                        error = MagnetError.InvalidInfoHash;
                        return false;
                    }

                    hash ??= h;
                    break;
                case "xt" when value.StartsWith("urn:btmh:", StringComparison.OrdinalIgnoreCase):
                    // BEP 52: the v2 info-hash as a multihash. A hybrid torrent's magnet carries btih too, which is used.
                    hasBtmh = true;
                    break;
                case "dn":
                    name = value;
                    break;
                case "tr":
                    if (!MetainfoParser.IsTrackerUrl(value))
                    {
                        error = MagnetError.InvalidTracker;
                        return false;
                    }

                    trackers.Add(value);
                    break;
                case "x.pe":
                    if (!TryParsePeer(value, out _))
                    {
                        error = MagnetError.InvalidPeer;
                        return false;
                    }

                    peers.Add(value);
                    break;
                default:
                    break; // BEP 9: unknown parameters are ignored.
            }
        }

        if (hash is null)
        {
            error = hasBtmh ? MagnetError.V2Only : MagnetError.MissingInfoHash;
            return false;
        }

        magnet = new MagnetLink(hash.Value, name, trackers, peers);
        error = MagnetError.None;
        return true;
    }

    /// <summary>BEP 9: the info-hash is 40 hex characters, or 32 base32 characters (RFC 4648, the older form).</summary>
    public static bool TryParseBtih(ReadOnlySpan<char> text, out NodeId hash)
    {
        hash = default;
        Span<byte> bytes = stackalloc byte[NodeId.Length];
        if (text.Length == 40)
        {
            if (Convert.FromHexString(text, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != NodeId.Length) return false;
        }
        else if (text.Length == 32)
        {
            var bits = 0;
            var acc = 0;
            var o = 0;
            foreach (var c in text)
            {
                var v = Base32Alphabet.IndexOf(char.ToUpperInvariant(c), StringComparison.Ordinal);
                if (v < 0) return false;
                acc = (acc << 5) | v;
                bits += 5;
                if (bits >= 8)
                {
                    bits -= 8;
                    bytes[o++] = (byte)(acc >> bits);
                    acc &= (1 << bits) - 1;
                }
            }
        }
        else
        {
            return false;
        }

        hash = new NodeId(bytes);
        return true;
    }

    /// <summary>Parses "host:port", "[v6]:port" or "a.b.c.d:port" into an endpoint (numeric hosts only).</summary>
    public static bool TryParsePeer(string text, out IPEndPoint? endPoint)
    {
        endPoint = null;
        if (!IPEndPoint.TryParse(text, out var ep) || ep.Port == 0) return false;
        if (!text.Contains(':', StringComparison.Ordinal)) return false;
        endPoint = ep;
        return true;
    }

    private static bool TryUnescape(string value, out string result)
    {
        result = string.Empty;
        var bytes = new List<byte>(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '%')
            {
                if (i + 2 >= value.Length) return false;
                if (!byte.TryParse(value.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b)) return false;
                bytes.Add(b);
                i += 2;
            }
            else if (c == '+')
            {
                bytes.Add((byte)' ');
            }
            else if (c > 0x7f)
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
            else
            {
                bytes.Add((byte)c);
            }
        }

        var array = bytes.ToArray();
        if (!System.Text.Unicode.Utf8.IsValid(array)) return false;
        result = Encoding.UTF8.GetString(array);
        return true;
    }

    /// <summary>The canonical form: hex info-hash, then dn, tr and x.pe, each percent-encoded.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder("magnet:?xt=urn:btih:");
        sb.Append(InfoHash.ToString());
        if (DisplayName is not null) sb.Append("&dn=").Append(Uri.EscapeDataString(DisplayName));
        foreach (var t in Trackers) sb.Append("&tr=").Append(Uri.EscapeDataString(t));
        foreach (var p in Peers) sb.Append("&x.pe=").Append(Uri.EscapeDataString(p));
        return sb.ToString();
    }

    /// <summary>Same info-hash, display name, trackers and peers (in order).</summary>
    public bool Equals(MagnetLink? other) =>
        other is not null && InfoHash == other.InfoHash && DisplayName == other.DisplayName &&
        Trackers.SequenceEqual(other.Trackers) && Peers.SequenceEqual(other.Peers);

    /// <inheritdoc/>
    public override int GetHashCode() => InfoHash.GetHashCode();
}
