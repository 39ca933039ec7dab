using Peerway.Core;
using Peerway.Core.Bencoding;

namespace Peerway.Dht;

/// <summary>
/// BEP 46 (updating torrents via DHT mutable items): a magnet link naming a BEP 44 mutable item,
/// <c>magnet:?xs=urn:btpk:&lt;64 hex public key&gt;[&amp;s=&lt;salt hex&gt;]</c>, whose value points at the torrent's current info-hash.
/// </summary>
public sealed record MutableTorrentLink
{
    private const string Prefix = "urn:btpk:";

    /// <summary>A link to the item of <paramref name="publicKey"/> (32 bytes) and <paramref name="salt"/> (at most 64 bytes).</summary>
    public MutableTorrentLink(ReadOnlyMemory<byte> publicKey, ReadOnlyMemory<byte> salt)
    {
        if (publicKey.Length != Bep44.PublicKeyLength) throw new ArgumentException("An ed25519 public key is 32 bytes.", nameof(publicKey));
        if (salt.Length > Bep44.MaxSaltLength) throw new ArgumentException($"A BEP 44 salt is at most {Bep44.MaxSaltLength} bytes.", nameof(salt));
        PublicKey = publicKey;
        Salt = salt;
    }

    /// <summary>The publisher's ed25519 public key.</summary>
    public ReadOnlyMemory<byte> PublicKey { get; }

    /// <summary>The item's salt (empty: none).</summary>
    public ReadOnlyMemory<byte> Salt { get; }

    /// <summary>The BEP 44 target the link resolves through: SHA-1(public key + salt).</summary>
    public NodeId Target => Bep44.MutableTarget(PublicKey.Span, Salt.Span);

    /// <summary>True when <paramref name="text"/> is a magnet link with an <c>xs=urn:btpk:</c> parameter (valid or not).</summary>
    public static bool IsMutableTorrentMagnet(string text) =>
        text is not null && text.StartsWith("magnet:?", StringComparison.OrdinalIgnoreCase)
        && text.Contains("xs=" + Prefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Parses a BEP 46 magnet link: "magnet:?xs=urn:btpk:[ Public Key (Hex) ]&amp;s=[ Salt (Hex) ]". Other parameters
    /// (dn, tr, ...) are ignored. False, with a one-line reason, when it is not one; never throws.
    /// </summary>
    public static bool TryParse(string text, out MutableTorrentLink? link, out string? error)
    {
        link = null;
        error = null;
        if (text is null || !text.StartsWith("magnet:?", StringComparison.OrdinalIgnoreCase))
        {
            error = "not a magnet link";
            return false;
        }

        byte[]? key = null;
        byte[] salt = [];
        foreach (var part in text["magnet:?".Length..].Split('&'))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) continue;
            var name = part[..eq];
            var value = Uri.UnescapeDataString(part[(eq + 1)..]);
            if (name.Equals("xs", StringComparison.OrdinalIgnoreCase) && value.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
            {
                if (key is not null)
                {
                    error = "more than one xs=urn:btpk: parameter";
                    return false;
                }

                var hex = value[Prefix.Length..];
                if (hex.Length != 2 * Bep44.PublicKeyLength || !TryHex(hex, out key))
                {
                    error = "xs=urn:btpk: needs a 32-byte public key as 64 hex digits";
                    return false;
                }
            }
            else if (name.Equals("s", StringComparison.OrdinalIgnoreCase))
            {
                if (!TryHex(value, out salt) || salt.Length > Bep44.MaxSaltLength)
                {
                    error = $"s= needs a salt of at most {Bep44.MaxSaltLength} bytes in hex";
                    return false;
                }
            }
        }

        if (key is null)
        {
            error = "no xs=urn:btpk:<public key> parameter";
            return false;
        }

        link = new MutableTorrentLink(key, salt);
        return true;
    }

    /// <summary>The magnet link, e.g. <c>magnet:?xs=urn:btpk:8543...&amp;s=666f6f</c>.</summary>
    public override string ToString() => "magnet:?xs=" + Prefix + Convert.ToHexStringLower(PublicKey.Span)
        + (Salt.IsEmpty ? string.Empty : "&s=" + Convert.ToHexStringLower(Salt.Span));

    /// <summary>Byte-wise equality of key and salt.</summary>
    public bool Equals(MutableTorrentLink? other) =>
        other is not null && PublicKey.Span.SequenceEqual(other.PublicKey.Span) && Salt.Span.SequenceEqual(other.Salt.Span);

    /// <inheritdoc/>
    public override int GetHashCode() => Target.GetHashCode();

    private static bool TryHex(string text, out byte[] bytes)
    {
        bytes = new byte[text.Length / 2];
        return text.Length % 2 == 0 && Convert.FromHexString(text, bytes, out _, out var written) == System.Buffers.OperationStatus.Done && written == bytes.Length;
    }
}

/// <summary>The torrent a BEP 46 item points at: its sequence number and info-hash, and the verified item itself.</summary>
public sealed record MutableTorrentUpdate(long Sequence, NodeId InfoHash, DhtItem Item);

/// <summary>BEP 46's item value: a bencoded dictionary <c>{"ih": &lt;20-byte info-hash&gt;}</c>.</summary>
public static class Bep46
{
    /// <summary>BEP 46: "The value of the payload v contains a dictionary with key ih (info hash) and value the 20 byte
    /// infohash of such torrent."</summary>
    public static byte[] EncodeValue(NodeId infoHash)
    {
        var dict = new BDictionary();
        dict.Add("ih", new BString(infoHash.ToArray()));
        return Bencode.Encode(dict);
    }

    /// <summary>Reads the info-hash from a BEP 46 value (other keys are ignored); false (never throws) when the value is
    /// not a dictionary with a 20-byte "ih".</summary>
    public static bool TryDecodeValue(ReadOnlySpan<byte> value, out NodeId infoHash)
    {
        infoHash = default;
        if (value.Length > Bep44.MaxValueLength || !Bencode.TryDecode(value, out var decoded, out _)) return false;
        return decoded is BDictionary dict && dict["ih"] is BString ih && NodeId.TryRead(ih.Value.Span, out infoHash) && ih.Value.Length == NodeId.Length;
    }
}
