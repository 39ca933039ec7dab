using Peerway.Core.Multiformats;

namespace Peerway.Content.DagPb;

/// <summary>Depth-first DAG walks: the one place that turns a block into the children still to visit.</summary>
internal static class DagLinks
{
    /// <summary>
    /// Pushes the children of <paramref name="cid"/>'s block onto <paramref name="stack"/> in reverse, so popping visits
    /// them in link order (the order CAR files and exporters use). Raw blocks have no children; other codecs are refused.
    /// </summary>
    public static ContentError PushChildren(Cid cid, ReadOnlySpan<byte> block, int depth, Stack<(Cid Cid, int Depth)> stack)
    {
        if (cid.Codec == Cid.RawCodec) return ContentError.None;
        if (cid.Codec != Cid.DagPbCodec) return ContentError.UnsupportedCodec;
        var error = DagPbCodec.TryDecode(block, out var node);
        if (error != ContentError.None) return error;
        for (var i = node!.Links.Count - 1; i >= 0; i--)
        {
            stack.Push((node.Links[i].Hash, depth + 1));
        }

        return ContentError.None;
    }
}
