using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Peerway.Core;
using Peerway.Core.Bencoding;

namespace Peerway.Dht;

/// <summary>
/// Sans-I/O KRPC (BEP 5) decoder and encoder over spans. Decoding never throws on network input: it returns a
/// <see cref="KrpcError"/>. It is zero-copy for queries (keys are compared in place; short fields go to the message's
/// inline buffers), so decoding a query allocates nothing beyond the <see cref="KrpcMessage"/> itself.
/// </summary>
/// <remarks>
/// Top-level and argument keys are accepted in any order (Postel: some hand-written encoders do not sort); nested
/// values of unknown keys are validated strictly by <see cref="BencodeReader"/>. Unknown keys are skipped (BEP 5
/// extensions such as BEP 32 "want" or BEP 33 "seed" are tolerated).
/// </remarks>
public static partial class KrpcCodec
{
    /// <summary>Largest datagram decoded. Mainline messages fit one UDP payload on a 1500-byte MTU; BEP 44 items
    /// stay under 1000 bytes of value. 8 KiB leaves room for large get_peers replies.</summary>
    public const int MaxDatagramLength = 8192;

    /// <summary>Most "values" entries read from one reply.</summary>
    public const int MaxValues = 1024;

    /// <summary>BEP 5: compact node info is a 20-byte id followed by 6 bytes of compact IPv4 address.</summary>
    public const int CompactNodeLength = 26;

    /// <summary>BEP 32 "want": entries read at most (two families are defined; a few more are tolerated).</summary>
    public const int MaxWantEntries = 8;

    /// <summary>BEP 32: compact IPv6 node info is a 20-byte id followed by 18 bytes of compact IPv6 address.</summary>
    public const int CompactNode6Length = 38;

    /// <summary>Longest error text kept from an "e" message.</summary>
    public const int MaxErrorMessageLength = 256;

    // KRPC messages nest at most dict → dict → list → string (e.g. r.values, a.want): depth 3; allow some slack.
    private static readonly BencodeLimits Limits = new()
    {
        MaxInputLength = MaxDatagramLength,
        MaxDepth = 6,
        MaxItems = 2 * MaxValues + 64,
        MaxStringLength = MaxDatagramLength,
    };

    /// <summary>Decodes a datagram into a new message. On failure the message still carries the "t" when it was read.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> datagram, out KrpcMessage message, out KrpcError error)
    {
        message = new KrpcMessage();
        error = Decode(datagram, message);
        return error == KrpcError.None;
    }

    /// <summary>Decodes a datagram into <paramref name="message"/> (reset first).</summary>
    public static KrpcError Decode(ReadOnlySpan<byte> datagram, KrpcMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        message.Reset();
        if (datagram.Length > MaxDatagramLength) return KrpcError.DatagramTooLarge;
        var peek = new BencodeReader(datagram, Limits).Peek();
        if (peek != BencodeToken.Dictionary)
        {
            return datagram.Length > 0 && peek != BencodeToken.None ? KrpcError.NotADictionary : KrpcError.MalformedBencode;
        }

        var state = default(DecodeState);
        var semantic = ReadFields(datagram, message, ReadTopLevelField, ref state, wholeInput: true);
        if (semantic == KrpcError.MalformedBencode) return semantic;
        if (!message.HasTransactionId) return semantic == KrpcError.TransactionIdTooLong ? semantic : KrpcError.MissingTransactionId;
        if (semantic != KrpcError.None) return semantic;
        if (!state.HasType) return KrpcError.InvalidType;
        return message.Type switch
        {
            KrpcMessageType.Query => DecodeQuery(state.Body, message),
            KrpcMessageType.Response => DecodeResponse(state.Body, message),
            _ => DecodeError(state.ErrorList, message),
        };
    }

    /// <summary>What the field readers learn besides the message's own fields.</summary>
    private ref struct DecodeState
    {
        public ReadOnlySpan<byte> Body;      // raw "a" or "r" dictionary
        public ReadOnlySpan<byte> ErrorList; // raw "e" list
        public bool HasType;
        public bool HasId;
        public bool ImpliedPort;
        public ReadOnlySpan<byte> Nodes;     // "nodes" of a reply (copied into the message's pooled buffer at the end)
        public ReadOnlySpan<byte> Nodes6;    // "nodes6" of a reply
    }

    /// <summary>Reads one value for <paramref name="key"/>; leaving the value unread means "skip it".</summary>
    private delegate KrpcError FieldReader(ReadOnlySpan<byte> key, BencodeToken token, ref BencodeReader reader, KrpcMessage message, ref DecodeState state);

    /// <summary>
    /// Walks a dictionary, handing each key to <paramref name="read"/>. Values it does not consume (unknown keys, or a
    /// known key of the wrong kind) are skipped and validated. Returns MalformedBencode for broken bencode, else the
    /// first field error.
    /// </summary>
    private static KrpcError ReadFields(ReadOnlySpan<byte> dictionary, KrpcMessage message, FieldReader read, ref DecodeState state, bool wholeInput = false)
    {
        var reader = new BencodeReader(dictionary, Limits);
        reader.TryEnterDictionary();
        var result = KrpcError.None;
        while (!reader.TryReadEnd())
        {
            if (reader.Error != BencodeError.None || !reader.TryReadString(out var key)) return KrpcError.MalformedBencode;
            var token = reader.Peek();
            var valueStart = reader.Position;
            var error = read(key, token, ref reader, message, ref state);
            if (reader.Error == BencodeError.None && reader.Position == valueStart && !reader.TrySkipValue()) return KrpcError.MalformedBencode;
            if (reader.Error != BencodeError.None) return KrpcError.MalformedBencode;
            if (result == KrpcError.None) result = error;
        }

        if (wholeInput && !reader.TryReadEndOfInput()) return KrpcError.MalformedBencode;
        return result;
    }

    private static KrpcError ReadTopLevelField(ReadOnlySpan<byte> key, BencodeToken token, ref BencodeReader reader, KrpcMessage message, ref DecodeState state)
    {
        if (key.SequenceEqual("t"u8))
        {
            if (token != BencodeToken.String) return KrpcError.MissingTransactionId;
            return reader.TryReadString(out var t) && !message.SetTransactionId(t) ? KrpcError.TransactionIdTooLong : KrpcError.None;
        }

        if (key.SequenceEqual("y"u8))
        {
            if (token != BencodeToken.String || !reader.TryReadString(out var y) || y.Length != 1 || y[0] is not ((byte)'q' or (byte)'r' or (byte)'e'))
            {
                return KrpcError.InvalidType;
            }

            message.Type = y[0] switch { (byte)'q' => KrpcMessageType.Query, (byte)'r' => KrpcMessageType.Response, _ => KrpcMessageType.Error };
            state.HasType = true;
            message.HasType = true;
            return KrpcError.None;
        }

        if (key.SequenceEqual("q"u8))
        {
            if (token != BencodeToken.String || !reader.TryReadString(out var q) || !message.SetMethodName(q)) return KrpcError.MissingMethod;
            message.Method = MethodOf(q);
            return KrpcError.None;
        }

        if (key.SequenceEqual("a"u8) || key.SequenceEqual("r"u8))
        {
            if (token != BencodeToken.Dictionary) return KrpcError.MissingBody;
            reader.TryReadRawValue(out state.Body);
            return KrpcError.None;
        }

        if (key.SequenceEqual("e"u8))
        {
            if (token != BencodeToken.List) return KrpcError.InvalidError;
            reader.TryReadRawValue(out state.ErrorList);
            return KrpcError.None;
        }

        if (key.SequenceEqual("v"u8))
        {
            // BEP 5: "v" is optional and informational; an odd one is ignored, not an error.
            if (token == BencodeToken.String && reader.TryReadString(out var v)) message.SetVersion(v);
            return KrpcError.None;
        }

        if (key.SequenceEqual("ip"u8)) return ReadExternalAddress(ref reader, token, message);
        // BEP 43: "ro": 1 marks a read-only node.
        if (key.SequenceEqual("ro"u8) && token == BencodeToken.Integer && reader.TryReadInteger(out var ro)) message.ReadOnly = ro == 1;
        return KrpcError.None;
    }

    private static KrpcMethod MethodOf(ReadOnlySpan<byte> q)
    {
        if (q.SequenceEqual("ping"u8)) return KrpcMethod.Ping;
        if (q.SequenceEqual("find_node"u8)) return KrpcMethod.FindNode;
        if (q.SequenceEqual("get_peers"u8)) return KrpcMethod.GetPeers;
        if (q.SequenceEqual("announce_peer"u8)) return KrpcMethod.AnnouncePeer;
        if (q.SequenceEqual("get"u8)) return KrpcMethod.Get;
        if (q.SequenceEqual("put"u8)) return KrpcMethod.Put;
        if (q.SequenceEqual("sample_infohashes"u8)) return KrpcMethod.SampleInfohashes;
        return KrpcMethod.Unknown;
    }

    private static KrpcError ReadExternalAddress(ref BencodeReader reader, BencodeToken token, KrpcMessage message)
    {
        // BEP 42: "ip" is the compact address (IPv4 6 bytes, IPv6 18 bytes) the responder saw the requester at.
        if (token != BencodeToken.String || !reader.TryReadString(out var ip)) return KrpcError.InvalidAddress;
        return message.SetExternalAddress(ip) ? KrpcError.None : KrpcError.InvalidAddress;
    }

    private static KrpcError DecodeQuery(ReadOnlySpan<byte> body, KrpcMessage message)
    {
        if (message.MethodName.IsEmpty && message.Method == KrpcMethod.Unknown) return KrpcError.MissingMethod;
        if (body.IsEmpty) return KrpcError.MissingBody;
        var state = default(DecodeState);
        var result = ReadFields(body, message, ReadArgument, ref state);
        message.ImpliedPort = state.ImpliedPort;
        if (result != KrpcError.None) return result;
        if (!state.HasId) return KrpcError.InvalidId;
        return message.Method switch
        {
            KrpcMethod.FindNode when message.Target is null => KrpcError.InvalidTarget,
            KrpcMethod.GetPeers when message.InfoHash is null => KrpcError.InvalidInfoHash,
            KrpcMethod.AnnouncePeer when message.InfoHash is null => KrpcError.InvalidInfoHash,
            KrpcMethod.AnnouncePeer when !message.HasToken => KrpcError.InvalidToken,
            KrpcMethod.AnnouncePeer when !state.ImpliedPort && message.Port is null or 0 => KrpcError.InvalidPort,
            KrpcMethod.Get when message.Target is null => KrpcError.InvalidTarget,
            KrpcMethod.SampleInfohashes when message.Target is null => KrpcError.InvalidTarget,
            KrpcMethod.Put when !message.HasToken => KrpcError.InvalidToken,
            KrpcMethod.Put when !message.HasItemValue => KrpcError.InvalidItem,
            _ => KrpcError.None,
        };
    }

    private static KrpcError ReadArgument(ReadOnlySpan<byte> key, BencodeToken token, ref BencodeReader reader, KrpcMessage message, ref DecodeState state)
    {
        NodeId id;
        if (key.SequenceEqual("id"u8))
        {
            if (!ReadId(ref reader, token, out id)) return KrpcError.InvalidId;
            (message.Id, state.HasId) = (id, true);
        }
        else if (key.SequenceEqual("target"u8))
        {
            if (!ReadId(ref reader, token, out id)) return KrpcError.InvalidTarget;
            message.Target = id;
        }
        else if (key.SequenceEqual("info_hash"u8))
        {
            if (!ReadId(ref reader, token, out id)) return KrpcError.InvalidInfoHash;
            message.InfoHash = id;
        }
        else if (key.SequenceEqual("port"u8))
        {
            // BEP 5: "port" is the TCP port of the announcing peer.
            if (token != BencodeToken.Integer || !reader.TryReadInteger(out var port) || port is < 0 or > ushort.MaxValue) return KrpcError.InvalidPort;
            message.Port = (int)port;
        }
        else if (key.SequenceEqual("implied_port"u8))
        {
            // BEP 5: "implied_port" non-zero means: use the UDP source port and ignore "port".
            if (token != BencodeToken.Integer || !reader.TryReadInteger(out var implied)) return KrpcError.WrongFieldType;
            state.ImpliedPort = implied != 0;
        }
        else if (key.SequenceEqual("token"u8))
        {
            if (token != BencodeToken.String || !reader.TryReadString(out var t) || !message.SetToken(t)) return KrpcError.InvalidToken;
        }
        else if (key.SequenceEqual("want"u8))
        {
            if (token == BencodeToken.List) return ReadWant(ref reader, message);
            // Not a list: ignored like an unknown key (BEP 32 nodes then answer with the query's own family).
        }
        else
        {
            return ReadItemField(key, token, ref reader, message, query: true);
        }

        return KrpcError.None;
    }

    /// <summary>
    /// BEP 44 fields of a get/put query or a get reply: "v" (any bencoded value, kept raw), "k", "sig", "salt" (strings),
    /// "seq", "cas" (integers). Sizes are not judged here: the node answers 205/206/207 for a well-formed put whose value,
    /// signature or salt is wrong, which a decoding error could not.
    /// </summary>
    private static KrpcError ReadItemField(ReadOnlySpan<byte> key, BencodeToken token, ref BencodeReader reader, KrpcMessage message, bool query)
    {
        if (key.SequenceEqual("v"u8))
        {
            if (!reader.TryReadRawValue(out var raw)) return KrpcError.MalformedBencode;
            message.ItemValue = raw.ToArray();
            message.HasItemValue = true;
        }
        else if (key.SequenceEqual("k"u8))
        {
            if (token != BencodeToken.String || !reader.TryReadString(out var k)) return KrpcError.InvalidItem;
            message.ItemKey = k.ToArray();
        }
        else if (key.SequenceEqual("sig"u8))
        {
            if (token != BencodeToken.String || !reader.TryReadString(out var sig)) return KrpcError.InvalidItem;
            message.ItemSignature = sig.ToArray();
        }
        else if (key.SequenceEqual("seq"u8))
        {
            if (token != BencodeToken.Integer || !reader.TryReadInteger(out var seq)) return KrpcError.InvalidItem;
            message.ItemSeq = seq;
        }
        else if (query && key.SequenceEqual("salt"u8))
        {
            if (token != BencodeToken.String || !reader.TryReadString(out var salt)) return KrpcError.InvalidItem;
            message.ItemSalt = salt.ToArray();
        }
        else if (query && key.SequenceEqual("cas"u8))
        {
            if (token != BencodeToken.Integer || !reader.TryReadInteger(out var cas)) return KrpcError.InvalidItem;
            message.ItemCas = cas;
        }

        return KrpcError.None;
    }

    private static KrpcError DecodeResponse(ReadOnlySpan<byte> body, KrpcMessage message)
    {
        if (body.IsEmpty) return KrpcError.MissingBody;
        var state = default(DecodeState);
        var result = ReadFields(body, message, ReadReplyField, ref state);
        if (result != KrpcError.None) return result;
        message.SetDecodedNodes(state.Nodes, state.Nodes6);
        return state.HasId ? KrpcError.None : KrpcError.InvalidId;
    }

    private static KrpcError ReadReplyField(ReadOnlySpan<byte> key, BencodeToken token, ref BencodeReader reader, KrpcMessage message, ref DecodeState state)
    {
        if (key.SequenceEqual("id"u8))
        {
            if (!ReadId(ref reader, token, out var id)) return KrpcError.InvalidId;
            (message.Id, state.HasId) = (id, true);
        }
        else if (key.SequenceEqual("nodes"u8))
        {
            if (token != BencodeToken.String || !reader.TryReadString(out var nodes) || nodes.Length % CompactNodeLength != 0) return KrpcError.InvalidNodes;
            state.Nodes = nodes;
        }
        else if (key.SequenceEqual("nodes6"u8))
        {
            if (token != BencodeToken.String || !reader.TryReadString(out var nodes6) || nodes6.Length % CompactNode6Length != 0) return KrpcError.InvalidNodes;
            state.Nodes6 = nodes6;
        }
        else if (key.SequenceEqual("values"u8))
        {
            return token == BencodeToken.List ? ReadValues(ref reader, message) : KrpcError.InvalidValues;
        }
        else if (key.SequenceEqual("token"u8))
        {
            if (token != BencodeToken.String || !reader.TryReadString(out var t) || !message.SetToken(t)) return KrpcError.InvalidToken;
        }
        else if (key.SequenceEqual("ip"u8))
        {
            // Some older nodes put BEP 42's "ip" inside "r"; the top-level one wins when both are present.
            if (!message.HasExternalAddress) return ReadExternalAddress(ref reader, token, message);
            return token == BencodeToken.String && reader.TryReadString(out var ip) && ip.Length is 6 or 18 ? KrpcError.None : KrpcError.InvalidAddress;
        }
        else if (key.SequenceEqual("samples"u8))
        {
            // BEP 51: 20-byte info-hashes, concatenated.
            if (token != BencodeToken.String || !reader.TryReadString(out var samples) || samples.Length % NodeId.Length != 0) return KrpcError.InvalidValues;
            message.Samples = samples.ToArray();
        }
        else if (key.SequenceEqual("num"u8) || key.SequenceEqual("interval"u8))
        {
            if (token != BencodeToken.Integer || !reader.TryReadInteger(out var n) || n is < 0 or > int.MaxValue) return KrpcError.WrongFieldType;
            if (key[0] == (byte)'n') message.Num = (int)n;
            else message.Interval = (int)n;
        }
        else
        {
            return ReadItemField(key, token, ref reader, message, query: false);
        }

        return KrpcError.None;
    }

    private static KrpcError ReadValues(ref BencodeReader reader, KrpcMessage message)
    {
        // BEP 5: "values" is a list of strings, each a compact peer address (6 bytes; 18 for IPv6 per BEP 32).
        reader.TryEnterList();
        var values = new List<IPEndPoint>();
        var result = KrpcError.None;
        while (!reader.TryReadEnd())
        {
            if (reader.Error != BencodeError.None) return KrpcError.MalformedBencode;
            if (reader.Peek() != BencodeToken.String)
            {
                if (!reader.TrySkipValue()) return KrpcError.MalformedBencode;
                result = KrpcError.InvalidValues;
                continue;
            }

            if (!reader.TryReadString(out var peer)) return KrpcError.MalformedBencode;
            if (values.Count >= MaxValues || !TryReadCompactEndPoint(peer, out var endPoint))
            {
                result = KrpcError.InvalidValues;
                continue;
            }

            values.Add(endPoint!);
        }

        message.Values = values;
        return result;
    }

    /// <summary>
    /// BEP 32: "want" is a list of strings, "n4" and/or "n6"; other strings are ignored (future families), a list longer
    /// than <see cref="MaxWantEntries"/> or holding a non-string is an error (the bencode itself stays bounded).
    /// </summary>
    private static KrpcError ReadWant(ref BencodeReader reader, KrpcMessage message)
    {
        reader.TryEnterList();
        var want = DhtWant.None;
        var entries = 0;
        var result = KrpcError.None;
        while (!reader.TryReadEnd())
        {
            if (reader.Error != BencodeError.None) return KrpcError.MalformedBencode;
            if (++entries > MaxWantEntries || reader.Peek() != BencodeToken.String)
            {
                if (!reader.TrySkipValue()) return KrpcError.MalformedBencode;
                result = KrpcError.InvalidWant;
                continue;
            }

            if (!reader.TryReadString(out var flag)) return KrpcError.MalformedBencode;
            if (flag.SequenceEqual("n4"u8)) want |= DhtWant.N4;
            else if (flag.SequenceEqual("n6"u8)) want |= DhtWant.N6;
        }

        message.Want = want;
        return result;
    }

    private static KrpcError DecodeError(ReadOnlySpan<byte> list, KrpcMessage message)
    {
        // BEP 5: "e" is a list whose first element is an integer code and second a string message.
        if (list.IsEmpty) return KrpcError.InvalidError;
        var reader = new BencodeReader(list, Limits);
        reader.TryEnterList();
        if (reader.Peek() != BencodeToken.Integer || !reader.TryReadInteger(out var code) || code is < int.MinValue or > int.MaxValue)
        {
            return KrpcError.InvalidError;
        }

        message.ErrorCode = (int)code;
        if (reader.Peek() == BencodeToken.String && reader.TryReadString(out var text))
        {
            message.ErrorMessage = System.Text.Encoding.UTF8.GetString(text[..Math.Min(text.Length, MaxErrorMessageLength)]);
        }

        return KrpcError.None;
    }

    private static bool ReadId(ref BencodeReader reader, BencodeToken token, out NodeId id)
    {
        id = default;
        return token == BencodeToken.String && reader.TryReadString(out var bytes) && NodeId.TryRead(bytes, out id);
    }
}
