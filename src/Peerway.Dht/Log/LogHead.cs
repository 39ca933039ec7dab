using System.Globalization;
using System.Text;
using Peerway.Core.Bencoding;

namespace Peerway.Dht.Log;

/// <summary>
/// A signed head of a tamper-evident log: "the log <see cref="Name"/> of <see cref="PublicKey"/> has
/// <see cref="Length"/> entries whose RFC 9162 Merkle root is <see cref="Root"/>". It is a BEP 44 mutable item — salt =
/// the log's name, seq = the length, v = <c>d3:leni&lt;n&gt;e4:root32:&lt;root&gt;e</c> — so the owner publishes each
/// new length in the DHT and anyone verifies it with the public key alone (Certificate Transparency's signed tree head,
/// Hypercore's signed root, carried by the DHT).
/// </summary>
public sealed record LogHead(byte[] PublicKey, string Name, long Length, byte[] Root, byte[] Signature)
{
    /// <summary>Longest log name (BEP 44's salt limit).</summary>
    public const int MaxNameLength = Bep44.MaxSaltLength;

    /// <summary>The BEP 44 item that carries this head.</summary>
    public DhtItem ToItem()
    {
        var salt = Encoding.UTF8.GetBytes(Name);
        return new DhtItem(Bep44.MutableTarget(PublicKey, salt), EncodeValue(Length, Root), PublicKey, salt, Length, Signature);
    }

    /// <summary>Signs the head of a log of <paramref name="length"/> entries with root <paramref name="root"/>.</summary>
    public static LogHead Sign(DhtSigningKey key, string name, long length, byte[] root)
    {
        ArgumentNullException.ThrowIfNull(key);
        CheckName(name);
        var item = DhtItem.Mutable(key, Encoding.UTF8.GetBytes(name), length, EncodeValue(length, root));
        return new LogHead(key.PublicKey, name, length, root, item.Signature!);
    }

    /// <summary>The head a BEP 44 item carries, when it is one and its signature verifies; else null.</summary>
    public static LogHead? FromItem(DhtItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        if (!item.IsMutable || !Bep44.IsValid(item)) return null;
        var reader = new BencodeReader(item.Value);
        long? length = null;
        byte[]? root = null;
        if (!reader.TryEnterDictionary()) return null;
        while (!reader.TryReadEnd())
        {
            if (!reader.TryReadString(out var key)) return null;
            if (key.SequenceEqual("len"u8) && reader.TryReadInteger(out var n)) length = n;
            else if (key.SequenceEqual("root"u8) && reader.TryReadString(out var r) && r.Length == MerkleTree.HashLength) root = r.ToArray();
            else if (!reader.TrySkipValue()) return null;
        }

        if (length is not { } len || len < 0 || len != item.Sequence || root is null) return null;
        string name;
        try
        {
            name = new UTF8Encoding(false, true).GetString(item.Salt);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }

        return new LogHead(item.PublicKey!, name, len, root, item.Signature!);
    }

    /// <summary>True when the signature verifies for this key, name, length and root.</summary>
    public bool Verifies() => FromItem(ToItem()) is not null;

    internal static void CheckName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Encoding.UTF8.GetByteCount(name) > MaxNameLength) throw new ArgumentException($"A log name is at most {MaxNameLength} bytes (a BEP 44 salt).", nameof(name));
    }

    private static byte[] EncodeValue(long length, byte[] root) =>
        [.. Encoding.ASCII.GetBytes("d3:leni" + length.ToString(CultureInfo.InvariantCulture) + "e4:root32:"), .. root, (byte)'e'];
}

/// <summary>Two signed heads of the same log and length with different roots: the owner signed two histories. Either
/// head verifies on its own, so the pair is proof anyone can check.</summary>
public sealed record ForkProof(LogHead First, LogHead Second)
{
    /// <summary>True when both heads verify, belong to the same key and log, have the same length, and differ.</summary>
    public bool IsValid() =>
        First.Verifies() && Second.Verifies() && First.PublicKey.AsSpan().SequenceEqual(Second.PublicKey) && First.Name == Second.Name
        && First.Length == Second.Length && !First.Root.AsSpan().SequenceEqual(Second.Root);
}
