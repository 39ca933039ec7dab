using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Peerway.Core.Multiformats;

namespace Peerway.Libp2p;

/// <summary>
/// A multiaddr (multiformats/multiaddr, protocols.csv): a sequence of protocol components, in text
/// (<c>/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…</c>) and binary (varint code, then a fixed-size or length-prefixed value)
/// forms. Parsing is bounded and returns typed errors.
/// </summary>
public sealed class Multiaddr : IEquatable<Multiaddr>
{
    /// <summary>Bound on an encoded multiaddr (go-multiaddr accepts far less in practice).</summary>
    public const int MaxLength = 1024;

    /// <summary>Bound on the number of components.</summary>
    public const int MaxComponents = 32;

    internal const int Ip4 = 4, Tcp = 6, Ip6 = 41, Dns = 53, Dns4 = 54, Dns6 = 55, DnsAddr = 56, Udp = 273, P2p = 421;

    /// <summary>Size of a component's value in bytes; -1: varint length-prefixed; 0: none.</summary>
    private static readonly Dictionary<int, (string Name, int Size)> ByCode = new()
    {
        [Ip4] = ("ip4", 4),
        [Tcp] = ("tcp", 2),
        [Ip6] = ("ip6", 16),
        [42] = ("ip6zone", -1),
        [Dns] = ("dns", -1),
        [Dns4] = ("dns4", -1),
        [Dns6] = ("dns6", -1),
        [DnsAddr] = ("dnsaddr", -1),
        [Udp] = ("udp", 2),
        [P2p] = ("p2p", -1),
        [290] = ("p2p-circuit", 0),
        [280] = ("webrtc-direct", 0),
        [281] = ("webrtc", 0),
        [443] = ("https", 0),
        [448] = ("tls", 0),
        [449] = ("sni", -1),
        [454] = ("noise", 0),
        [460] = ("quic", 0),
        [461] = ("quic-v1", 0),
        [465] = ("webtransport", 0),
        [466] = ("certhash", -1),
        [477] = ("ws", 0),
        [478] = ("wss", 0),
        [480] = ("http", 0),
    };

    /// <summary>Names to codes; <c>ipfs</c> is the old name of <c>p2p</c> (still read, never written).</summary>
    private static readonly Dictionary<string, int> ByName = new(ByCode.Select(p => KeyValuePair.Create(p.Value.Name, p.Key)).Append(KeyValuePair.Create("ipfs", P2p)), StringComparer.Ordinal);

    private readonly byte[] _bytes;

    private Multiaddr(byte[] bytes, List<(int Code, byte[] Value)> components)
    {
        _bytes = bytes;
        Components = components;
    }

    /// <summary>The components, in order: protocol code and raw value.</summary>
    public IReadOnlyList<(int Code, byte[] Value)> Components { get; }

    /// <summary>The binary form.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The peer id of a trailing <c>/p2p/…</c> component, if any.</summary>
    public PeerId? PeerId => Components.Count > 0 && Components[^1].Code == P2p && Libp2p.PeerId.TryDecode(Components[^1].Value, out var id) == Libp2pError.None ? id : null;

    /// <summary>The multiaddr of a TCP endpoint, optionally with a peer id.</summary>
    public static Multiaddr FromTcp(IPEndPoint endPoint, PeerId? peer = null)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var list = new List<(int, byte[])>
        {
            endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? (Ip6, endPoint.Address.GetAddressBytes()) : (Ip4, endPoint.Address.MapToIPv4().GetAddressBytes()),
        };
        var port = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(port, (ushort)endPoint.Port);
        list.Add((Tcp, port));
        if (peer is not null) list.Add((P2p, peer.Bytes.ToArray()));
        return FromComponents(list);
    }

    /// <summary>This address with <c>/p2p/<paramref name="peer"/></c> appended (or replaced).</summary>
    public Multiaddr WithPeer(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var list = Components.Where(c => c.Code != P2p).ToList();
        list.Add((P2p, peer.Bytes.ToArray()));
        return FromComponents(list);
    }

    /// <summary>The TCP endpoint of an <c>/ip4|ip6/…/tcp/…</c> address (DNS names are not resolved here).</summary>
    public bool TryGetTcpEndPoint(out IPEndPoint? endPoint)
    {
        endPoint = null;
        if (Components.Count < 2 || Components[1].Code != Tcp) return false;
        var (code, value) = Components[0];
        if (code is not (Ip4 or Ip6)) return false;
        endPoint = new IPEndPoint(new IPAddress(value), BinaryPrimitives.ReadUInt16BigEndian(Components[1].Value));
        return true;
    }

    /// <summary>Reads the binary form.</summary>
    public static Libp2pError TryDecode(ReadOnlySpan<byte> bytes, out Multiaddr? address)
    {
        address = null;
        if (bytes.Length > MaxLength) return Libp2pError.TooLong;
        if (bytes.IsEmpty) return Libp2pError.Truncated;
        var list = new List<(int, byte[])>();
        var rest = bytes;
        while (!rest.IsEmpty)
        {
            if (list.Count == MaxComponents) return Libp2pError.TooLong;
            if (Varint.TryRead(rest, out var code, out var n) != MultiformatError.None) return Libp2pError.BadVarint;
            rest = rest[n..];
            if (code > int.MaxValue || !ByCode.TryGetValue((int)code, out var proto)) return Libp2pError.UnknownProtocol;
            var size = proto.Size;
            if (size < 0)
            {
                if (Varint.TryRead(rest, out var len, out n) != MultiformatError.None) return Libp2pError.BadVarint;
                rest = rest[n..];
                if (len > (ulong)rest.Length) return Libp2pError.Truncated;
                size = (int)len;
            }

            if (rest.Length < size) return Libp2pError.Truncated;
            list.Add(((int)code, rest[..size].ToArray()));
            rest = rest[size..];
        }

        address = new Multiaddr(bytes.ToArray(), list);
        return Libp2pError.None;
    }

    /// <summary>Parses the text form.</summary>
    public static Libp2pError TryParse(string text, out Multiaddr? address)
    {
        address = null;
        if (string.IsNullOrEmpty(text) || text.Length > 4 * MaxLength || text[0] != '/') return text is { Length: > 4 * MaxLength } ? Libp2pError.TooLong : Libp2pError.BadAddress;
        var parts = text.TrimEnd('/').Split('/');
        var list = new List<(int, byte[])>();
        for (var i = 1; i < parts.Length; i++)
        {
            if (list.Count == MaxComponents) return Libp2pError.TooLong;
            if (!ByName.TryGetValue(parts[i], out var code)) return Libp2pError.UnknownProtocol;
            var size = ByCode[code].Size;
            if (size == 0)
            {
                list.Add((code, []));
                continue;
            }

            if (++i >= parts.Length) return Libp2pError.BadAddress;
            var error = TryParseValue(code, parts[i], out var value);
            if (error != Libp2pError.None) return error;
            list.Add((code, value));
        }

        if (list.Count == 0) return Libp2pError.BadAddress;
        var encoded = Encode(list);
        if (encoded.Length > MaxLength) return Libp2pError.TooLong;
        address = new Multiaddr(encoded, list);
        return Libp2pError.None;
    }

    private static Libp2pError TryParseValue(int code, string text, out byte[] value)
    {
        value = [];
        switch (code)
        {
            case Ip4:
                // Dotted quad only: IPAddress.TryParse also takes "1.2.3" and "0x7f.1", which multiaddr does not.
                if (text.Split('.') is not { Length: 4 } quad || quad.Any(q => q.Length is 0 or > 3 || !q.All(char.IsAsciiDigit)) ||
                    !IPAddress.TryParse(text, out var v4) || v4.AddressFamily != AddressFamily.InterNetwork) return Libp2pError.BadAddress;
                value = v4.GetAddressBytes();
                return Libp2pError.None;
            case Ip6:
                if (!IPAddress.TryParse(text, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6) return Libp2pError.BadAddress;
                value = v6.GetAddressBytes();
                return Libp2pError.None;
            case Tcp or Udp:
                if (!ushort.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)) return Libp2pError.BadAddress;
                value = new byte[2];
                BinaryPrimitives.WriteUInt16BigEndian(value, port);
                return Libp2pError.None;
            case P2p:
                if (Libp2p.PeerId.TryParse(text, out var id) != Libp2pError.None) return Libp2pError.BadPeerId;
                value = id!.Bytes.ToArray();
                return Libp2pError.None;
            case 466:
                if (Multibase.TryDecode(text, out var hash) != MultiformatError.None) return Libp2pError.BadAddress;
                value = hash;
                return Libp2pError.None;
            default:
                if (text.Length == 0 || text.Length > 255) return Libp2pError.BadAddress;
                value = Encoding.UTF8.GetBytes(text);
                return Libp2pError.None;
        }
    }

    private static Multiaddr FromComponents(List<(int Code, byte[] Value)> list) => new(Encode(list), list);

    private static byte[] Encode(List<(int Code, byte[] Value)> list)
    {
        var w = new System.Buffers.ArrayBufferWriter<byte>();
        foreach (var (code, value) in list)
        {
            w.Advance(Varint.Write((ulong)code, w.GetSpan(10)));
            if (ByCode[code].Size < 0) w.Advance(Varint.Write((ulong)value.Length, w.GetSpan(10)));
            w.Write(value);
        }

        return w.WrittenSpan.ToArray();
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var (code, value) in Components)
        {
            sb.Append('/').Append(ByCode[code].Name);
            if (ByCode[code].Size == 0) continue;
            sb.Append('/');
            sb.Append(code switch
            {
                Ip4 or Ip6 => new IPAddress(value).ToString(),
                Tcp or Udp => BinaryPrimitives.ReadUInt16BigEndian(value).ToString(System.Globalization.CultureInfo.InvariantCulture),
                P2p => Multibase.EncodeBase58Raw(value),
                466 => Multibase.EncodeBase58Btc(value),
                _ => Encoding.UTF8.GetString(value),
            });
        }

        return sb.ToString();
    }

    /// <inheritdoc/>
    public bool Equals(Multiaddr? other) => other is not null && _bytes.AsSpan().SequenceEqual(other._bytes);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Multiaddr m && Equals(m);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(_bytes);
        return h.ToHashCode();
    }
}
