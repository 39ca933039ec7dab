using Peerway.Core.Multiformats;

namespace Peerway.Content.DagPb;

/// <summary>dag-pb spec: <c>message PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }</c>.</summary>
public sealed record PbLink(Cid Hash, string? Name, ulong? Tsize);

/// <summary>dag-pb spec: <c>message PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }</c>.</summary>
public sealed class PbNode
{
    /// <summary>A node with <paramref name="links"/> (kept as given, in their encoded order) and <paramref name="data"/> (null: no Data field).</summary>
    public PbNode(IReadOnlyList<PbLink> links, ReadOnlyMemory<byte>? data)
    {
        Links = links;
        Data = data;
    }

    /// <summary>The Links field, in the order given or decoded.</summary>
    public IReadOnlyList<PbLink> Links { get; }

    /// <summary>The Data field, or null when absent (distinct from present and empty).</summary>
    public ReadOnlyMemory<byte>? Data { get; }
}
