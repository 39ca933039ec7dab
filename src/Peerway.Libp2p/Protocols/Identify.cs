namespace Peerway.Libp2p.Protocols;

/// <summary>
/// What a peer says about itself over identify (libp2p specs, identify/README.md): <c>/ipfs/id/1.0.0</c> is answered
/// with one length-prefixed protobuf and the stream is closed; <c>/ipfs/id/push/1.0.0</c> carries the same message the
/// other way when something changes.
/// </summary>
public sealed record IdentifyInfo
{
    /// <summary>identify/README.md: the protocol ids.</summary>
    public const string ProtocolId = "/ipfs/id/1.0.0";

    /// <summary>The push variant.</summary>
    public const string PushProtocolId = "/ipfs/id/push/1.0.0";

    /// <summary>Bound on one identify message (js-libp2p: 8 KiB).</summary>
    public const int MaxMessage = 8 * 1024;

    /// <summary>e.g. <c>ipfs/0.1.0</c>.</summary>
    public string ProtocolVersion { get; init; } = "";

    /// <summary>e.g. <c>peerway/0.1.0</c>, <c>js-libp2p/…</c>.</summary>
    public string AgentVersion { get; init; } = "";

    /// <summary>The peer's public key (protobuf encoding); empty when absent.</summary>
    public byte[] PublicKey { get; init; } = [];

    /// <summary>The addresses the peer listens on.</summary>
    public IReadOnlyList<Multiaddr> ListenAddresses { get; init; } = [];

    /// <summary>How the peer sees us.</summary>
    public Multiaddr? ObservedAddress { get; init; }

    /// <summary>The protocols the peer handles.</summary>
    public IReadOnlyList<string> Protocols { get; init; } = [];

    internal byte[] Encode()
    {
        var w = new ProtoWriter();
        if (PublicKey.Length > 0) w.Bytes(1, PublicKey);
        foreach (var a in ListenAddresses) w.Bytes(2, a.Bytes);
        foreach (var p in Protocols) w.String(3, p);
        if (ObservedAddress is not null) w.Bytes(4, ObservedAddress.Bytes);
        w.String(5, ProtocolVersion);
        w.String(6, AgentVersion);
        return w.ToArray();
    }

    /// <summary>Reads an identify message; addresses it cannot parse are skipped (a peer may know protocols we do not).</summary>
    internal static Libp2pError TryDecode(ReadOnlySpan<byte> message, out IdentifyInfo? info)
    {
        info = null;
        if (message.Length > MaxMessage) return Libp2pError.TooLong;
        string protocolVersion = "", agentVersion = "";
        byte[] key = [];
        var addresses = new List<Multiaddr>();
        var protocols = new List<string>();
        Multiaddr? observed = null;
        var fields = new ProtoFields(message);
        while (fields.Next(out var f))
        {
            if (f.WireType != 2) continue;
            switch (f.Number)
            {
                case 1:
                    key = f.Bytes.ToArray();
                    break;
                case 2 when addresses.Count < Multiaddr.MaxComponents * 4:
                    if (Multiaddr.TryDecode(f.Bytes, out var a) == Libp2pError.None) addresses.Add(a!);
                    break;
                case 3 when protocols.Count < 256:
                    protocols.Add(System.Text.Encoding.UTF8.GetString(f.Bytes));
                    break;
                case 4:
                    if (Multiaddr.TryDecode(f.Bytes, out var o) == Libp2pError.None) observed = o;
                    break;
                case 5:
                    protocolVersion = System.Text.Encoding.UTF8.GetString(f.Bytes);
                    break;
                case 6:
                    agentVersion = System.Text.Encoding.UTF8.GetString(f.Bytes);
                    break;
            }
        }

        if (fields.Error != Libp2pError.None) return fields.Error;
        info = new IdentifyInfo
        {
            ProtocolVersion = protocolVersion,
            AgentVersion = agentVersion,
            PublicKey = key,
            ListenAddresses = addresses,
            ObservedAddress = observed,
            Protocols = protocols,
        };
        return Libp2pError.None;
    }
}
