using System.Net;
using System.Runtime.CompilerServices;
using Peerway.Core;

namespace Peerway.Dht;

/// <summary>BEP 5: the "y" key — "q" query, "r" response, "e" error.</summary>
public enum KrpcMessageType
{
    /// <summary>"q": a query.</summary>
    Query,
    /// <summary>"r": a response.</summary>
    Response,
    /// <summary>"e": an error.</summary>
    Error,
}

/// <summary>BEP 32 "want": "n4" asks for IPv4 nodes ("nodes"), "n6" for IPv6 nodes ("nodes6").</summary>
[Flags]
public enum DhtWant
{
    /// <summary>No "want" key: the reply carries the nodes of the family the query came over.</summary>
    None = 0,

    /// <summary>"n4": compact IPv4 node info in "nodes".</summary>
    N4 = 1,

    /// <summary>"n6": compact IPv6 node info in "nodes6".</summary>
    N6 = 2,
}

/// <summary>BEP 5 query methods ("q"). <see cref="Unknown"/> keeps the raw name in <see cref="KrpcMessage.MethodName"/>.</summary>
public enum KrpcMethod
{
    /// <summary>A method this node does not implement (answered with error 204).</summary>
    Unknown = 0,
    /// <summary>"ping".</summary>
    Ping,
    /// <summary>"find_node".</summary>
    FindNode,
    /// <summary>"get_peers".</summary>
    GetPeers,
    /// <summary>"announce_peer".</summary>
    AnnouncePeer,

    /// <summary>BEP 44 "get": an item by its 20-byte target.</summary>
    Get,

    /// <summary>BEP 44 "put": store an immutable or mutable item.</summary>
    Put,

    /// <summary>BEP 51 "sample_infohashes": a random sample of the info-hashes a node stores.</summary>
    SampleInfohashes,
}

/// <summary>BEP 5 error codes carried in the "e" list.</summary>
public enum KrpcErrorCode
{
    /// <summary>201 Generic Error.</summary>
    Generic = 201,
    /// <summary>202 Server Error.</summary>
    Server = 202,
    /// <summary>203 Protocol Error (malformed packet, invalid arguments, bad token).</summary>
    Protocol = 203,
    /// <summary>204 Method Unknown.</summary>
    MethodUnknown = 204,

    /// <summary>BEP 44: "v" larger than 1,000 bytes.</summary>
    MessageTooBig = 205,

    /// <summary>BEP 44: the signature does not verify.</summary>
    InvalidSignature = 206,

    /// <summary>BEP 44: "salt" longer than 64 bytes.</summary>
    SaltTooBig = 207,

    /// <summary>BEP 44: "cas" does not match the stored sequence number.</summary>
    CasMismatch = 301,

    /// <summary>BEP 44: "seq" is lower than (or equal to, with another value) the stored one.</summary>
    SequenceNotNewer = 302,
}

/// <summary>
/// One KRPC message (BEP 5). A mutable, reusable object: decoding fills it without allocating for queries (short byte
/// fields such as "t", "v" and "token" live in inline buffers), so a caller may keep one instance per socket.
/// </summary>
public sealed class KrpcMessage
{
    /// <summary>Longest "t" accepted. BEP 5: "typically 2 characters"; Mainline clients use 2–4 bytes.</summary>
    public const int MaxTransactionIdLength = 32;

    /// <summary>Longest "v" kept. BEP 5/20: a 2-letter client id plus a 2-byte version.</summary>
    public const int MaxVersionLength = 16;

    /// <summary>Longest "token" accepted (libtorrent sends 4 bytes, bittorrent-dht 20).</summary>
    public const int MaxTokenLength = 64;

    /// <summary>Longest query method name kept.</summary>
    public const int MaxMethodNameLength = 32;

    private Buffer32 _transactionId;
    private int _transactionIdLength = -1;
    private Buffer16 _version;
    private int _versionLength = -1;
    private Buffer64 _token;
    private int _tokenLength = -1;
    private Buffer32 _methodName;
    private int _methodNameLength;
    private Buffer18 _externalAddress;
    private int _externalAddressLength = -1;
    private byte[]? _pooledNodes;

    /// <summary>"y": query, response or error.</summary>
    public KrpcMessageType Type { get; set; }

    /// <summary>True when the decoded datagram carried a valid "y" (<see cref="Type"/> is then what the sender said).</summary>
    public bool HasType { get; internal set; }

    /// <summary>"t": echoed back in the reply. Empty when absent (see <see cref="HasTransactionId"/>).</summary>
    public ReadOnlySpan<byte> TransactionId =>
        _transactionIdLength < 0 ? default : ((ReadOnlySpan<byte>)_transactionId)[.._transactionIdLength];

    /// <summary>True when "t" was present.</summary>
    public bool HasTransactionId => _transactionIdLength >= 0;

    /// <summary>"v": the sender's client version, when present and short enough to keep.</summary>
    public ReadOnlySpan<byte> Version => _versionLength < 0 ? default : ((ReadOnlySpan<byte>)_version)[.._versionLength];

    /// <summary>True when "v" was present and kept.</summary>
    public bool HasVersion => _versionLength >= 0;

    /// <summary>"q" of a query.</summary>
    public KrpcMethod Method { get; set; }

    /// <summary>The raw "q" value (set for every decoded query; used to encode <see cref="KrpcMethod.Unknown"/>).</summary>
    public ReadOnlySpan<byte> MethodName => ((ReadOnlySpan<byte>)_methodName)[.._methodNameLength];

    /// <summary>"id" of the querying or responding node (arguments "a" or reply "r").</summary>
    public NodeId Id { get; set; }

    /// <summary>"target" of find_node (or of an unknown query).</summary>
    public NodeId? Target { get; set; }

    /// <summary>"info_hash" of get_peers / announce_peer.</summary>
    public NodeId? InfoHash { get; set; }

    /// <summary>"port" of announce_peer.</summary>
    public int? Port { get; set; }

    /// <summary>"implied_port" of announce_peer (BEP 5: use the UDP source port instead of "port").</summary>
    public bool ImpliedPort { get; set; }

    /// <summary>"token" of a get_peers reply or announce_peer query.</summary>
    public ReadOnlySpan<byte> Token => _tokenLength < 0 ? default : ((ReadOnlySpan<byte>)_token)[.._tokenLength];

    /// <summary>True when "token" was present.</summary>
    public bool HasToken => _tokenLength >= 0;

    /// <summary>BEP 43 "ro": the querying node is read-only and must not be added to routing tables.</summary>
    public bool ReadOnly { get; set; }

    /// <summary>BEP 32 "want" of find_node/get_peers: the address families whose nodes the requester asks for
    /// (<see cref="DhtWant.None"/>: absent, i.e. the family the query came over).</summary>
    public DhtWant Want { get; set; }

    /// <summary>BEP 42 "ip": the requester's address as seen by the responder. Kept as its compact form (no object per
    /// decoded reply); reading the property makes an endpoint.</summary>
    public IPEndPoint? ExternalAddress
    {
        get => _externalAddressLength < 0 ? null : KrpcCodec.TryReadCompactEndPoint(ExternalAddressCompact, out var endPoint) ? endPoint : null;
        set
        {
            _externalAddressLength = -1;
            if (value is null) return;
            var length = KrpcCodec.WriteCompactEndPoint(value, _externalAddress);
            if (length > 0) _externalAddressLength = length;
        }
    }

    /// <summary>"ip" in compact form (6 or 18 bytes), empty when absent.</summary>
    internal ReadOnlySpan<byte> ExternalAddressCompact =>
        _externalAddressLength < 0 ? default : ((ReadOnlySpan<byte>)_externalAddress)[.._externalAddressLength];

    internal bool HasExternalAddress => _externalAddressLength >= 0;

    /// <summary>Sets "ip" from its compact form; false (nothing set) unless it is 6 or 18 bytes (BEP 42).</summary>
    internal bool SetExternalAddress(ReadOnlySpan<byte> compact)
    {
        if (compact.Length is not (6 or 18)) return false;
        compact.CopyTo(_externalAddress);
        _externalAddressLength = compact.Length;
        return true;
    }

    /// <summary>"nodes": compact IPv4 node info, 26 bytes per node (BEP 5). A decoded message's nodes live in a pooled
    /// buffer that is reused after <see cref="Reset"/> (or the next decode into this instance): copy them to keep them.</summary>
    public ReadOnlyMemory<byte> Nodes { get; set; }

    /// <summary>"nodes6": compact IPv6 node info, 38 bytes per node (BEP 32).</summary>
    public ReadOnlyMemory<byte> Nodes6 { get; set; }

    /// <summary>
    /// Encode "nodes" even when <see cref="Nodes"/> is empty: BEP 5's find_node reply (and a get_peers reply without
    /// values) always carries the key, so a node with an empty routing table answers <c>"nodes": ""</c>.
    /// </summary>
    public bool NodesKeyAlways { get; set; }

    /// <summary>As <see cref="NodesKeyAlways"/>, for "nodes6" (BEP 32: replies to IPv6 queries).</summary>
    public bool Nodes6KeyAlways { get; set; }

    /// <summary>"values": compact peers (6 bytes IPv4, 18 bytes IPv6).</summary>
    public IReadOnlyList<IPEndPoint>? Values { get; set; }

    /// <summary>BEP 44 "v" of a get reply or put query: the item's value as its raw bencoded bytes (any bencoded type).
    /// Decoding copies it (BEP 44 messages are rare next to lookups). Not to be confused with the top-level "v"
    /// (<see cref="Version"/>).</summary>
    public ReadOnlyMemory<byte> ItemValue { get; set; }

    /// <summary>True when "v" was present in the body (an item is carried).</summary>
    public bool HasItemValue { get; set; }

    /// <summary>BEP 44 "k": the ed25519 public key of a mutable item (32 bytes when valid; checked by the node).</summary>
    public byte[]? ItemKey { get; set; }

    /// <summary>BEP 44 "sig": the ed25519 signature of a mutable item (64 bytes when valid).</summary>
    public byte[]? ItemSignature { get; set; }

    /// <summary>BEP 44 "salt" of a mutable put (up to 64 bytes when valid).</summary>
    public byte[]? ItemSalt { get; set; }

    /// <summary>BEP 44 "seq": a mutable item's sequence number (put, get reply), or in a get query the sequence number the
    /// requester already has (the item is returned only when newer).</summary>
    public long? ItemSeq { get; set; }

    /// <summary>BEP 44 "cas": a put succeeds only if the stored sequence number equals it.</summary>
    public long? ItemCas { get; set; }

    /// <summary>BEP 51 "interval" of a sample_infohashes reply: seconds before the requester should ask again.</summary>
    public int? Interval { get; set; }

    /// <summary>BEP 51 "num": how many info-hashes the responder stores in all.</summary>
    public int? Num { get; set; }

    /// <summary>BEP 51 "samples": info-hashes, 20 bytes each (copied when decoded).</summary>
    public ReadOnlyMemory<byte> Samples { get; set; }

    /// <summary>The numeric code of an "e" message.</summary>
    public int ErrorCode { get; set; }

    /// <summary>The text of an "e" message.</summary>
    public string? ErrorMessage { get; set; }

    /// <summary>Sets "t"; false (and unchanged) when longer than the bound.</summary>
    public bool SetTransactionId(ReadOnlySpan<byte> value) => Set(value, MaxTransactionIdLength, _transactionId, ref _transactionIdLength);

    /// <summary>Sets "v"; false (and unchanged) when longer than the bound.</summary>
    public bool SetVersion(ReadOnlySpan<byte> value) => Set(value, MaxVersionLength, _version, ref _versionLength);

    /// <summary>Sets "token"; false (and unchanged) when longer than the bound.</summary>
    public bool SetToken(ReadOnlySpan<byte> value) => Set(value, MaxTokenLength, _token, ref _tokenLength);

    /// <summary>Sets the raw "q" name; false (and unchanged) when longer than the bound.</summary>
    public bool SetMethodName(ReadOnlySpan<byte> value)
    {
        var length = -1;
        if (!Set(value, MaxMethodNameLength, _methodName, ref length)) return false;
        _methodNameLength = length;
        return true;
    }

    /// <summary>Removes "v".</summary>
    public void ClearVersion() => _versionLength = -1;

    /// <summary>Removes "token".</summary>
    public void ClearToken() => _tokenLength = -1;

    private static bool Set(ReadOnlySpan<byte> value, int max, Span<byte> buffer, ref int length)
    {
        if (value.Length > max) return false;
        value.CopyTo(buffer);
        length = value.Length;
        return true;
    }

    /// <summary>Copies decoded "nodes" and "nodes6" into one pooled buffer (no array per decoded reply; given back by
    /// <see cref="Reset"/>).</summary>
    internal void SetDecodedNodes(ReadOnlySpan<byte> nodes, ReadOnlySpan<byte> nodes6)
    {
        if (nodes.IsEmpty && nodes6.IsEmpty) return;
        var buffer = _pooledNodes = System.Buffers.ArrayPool<byte>.Shared.Rent(nodes.Length + nodes6.Length);
        nodes.CopyTo(buffer);
        nodes6.CopyTo(buffer.AsSpan(nodes.Length));
        if (!nodes.IsEmpty) Nodes = buffer.AsMemory(0, nodes.Length);
        if (!nodes6.IsEmpty) Nodes6 = buffer.AsMemory(nodes.Length, nodes6.Length);
    }

    /// <summary>Clears every field so the instance can be reused (a decoded message's pooled node buffer is given back).</summary>
    public void Reset()
    {
        if (_pooledNodes is { } pooled)
        {
            _pooledNodes = null;
            System.Buffers.ArrayPool<byte>.Shared.Return(pooled);
        }

        Type = KrpcMessageType.Query;
        HasType = false;
        _transactionIdLength = -1;
        _versionLength = -1;
        _tokenLength = -1;
        _methodNameLength = 0;
        Method = KrpcMethod.Unknown;
        Id = default;
        Target = null;
        InfoHash = null;
        Port = null;
        ImpliedPort = false;
        ReadOnly = false;
        Want = DhtWant.None;
        _externalAddressLength = -1;
        Nodes = default;
        Nodes6 = default;
        NodesKeyAlways = false;
        Nodes6KeyAlways = false;
        Values = null;
        ItemValue = default;
        HasItemValue = false;
        ItemKey = null;
        ItemSignature = null;
        ItemSalt = null;
        ItemSeq = null;
        ItemCas = null;
        Interval = null;
        Num = null;
        Samples = default;
        ErrorCode = 0;
        ErrorMessage = null;
    }

    /// <summary>The BEP 5 method name for <paramref name="method"/>.</summary>
    public static ReadOnlySpan<byte> NameOf(KrpcMethod method) => method switch
    {
        KrpcMethod.Ping => "ping"u8,
        KrpcMethod.FindNode => "find_node"u8,
        KrpcMethod.GetPeers => "get_peers"u8,
        KrpcMethod.AnnouncePeer => "announce_peer"u8,
        KrpcMethod.Get => "get"u8,
        KrpcMethod.Put => "put"u8,
        KrpcMethod.SampleInfohashes => "sample_infohashes"u8,
        _ => default,
    };

    /// <summary>A one-line description for logs.</summary>
    public override string ToString() => Type switch
    {
        KrpcMessageType.Query => $"query {(Method == KrpcMethod.Unknown ? System.Text.Encoding.ASCII.GetString(MethodName) : Method)} t={Convert.ToHexStringLower(TransactionId)}",
        KrpcMessageType.Response => $"response t={Convert.ToHexStringLower(TransactionId)} id={Id}",
        _ => $"error {ErrorCode} '{ErrorMessage}' t={Convert.ToHexStringLower(TransactionId)}",
    };

    [InlineArray(MaxTokenLength)]
    private struct Buffer64
    {
        private byte _element;
    }

    [InlineArray(MaxTransactionIdLength)]
    private struct Buffer32
    {
        private byte _element;
    }

    /// <summary>A compact IPv6 endpoint (BEP 42 "ip": 16 address bytes and the port), the longest "ip".</summary>
    [InlineArray(18)]
    private struct Buffer18
    {
        private byte _element;
    }

    [InlineArray(MaxVersionLength)]
    private struct Buffer16
    {
        private byte _element;
    }
}
