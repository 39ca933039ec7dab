using Peerway.Core;

namespace Peerway.Simulation;

/// <summary>
/// The ids of live honest nodes, for judging lookups: the true k closest to a target by XOR, found in a sorted array by
/// descending the implicit binary trie (every id under the target's side of a bit is closer than every id under the
/// other side), so a query costs O(k · 160 · log N) instead of a scan.
/// </summary>
internal sealed class GroundTruth
{
    private readonly Dictionary<NodeId, int> _live = [];
    private NodeId[] _sorted = [];
    private bool _dirty;

    public int Count => _live.Count;

    public void Add(NodeId id, int host)
    {
        _live[id] = host;
        _dirty = true;
    }

    public void Remove(NodeId id)
    {
        if (_live.Remove(id)) _dirty = true;
    }

    public bool Contains(NodeId id) => _live.ContainsKey(id);

    public bool TryGetHost(NodeId id, out int host) => _live.TryGetValue(id, out host);

    /// <summary>The <paramref name="k"/> live ids closest to <paramref name="target"/>, closest first.</summary>
    public List<NodeId> Closest(NodeId target, int k)
    {
        if (_dirty)
        {
            _sorted = [.. _live.Keys];
            Array.Sort(_sorted);
            _dirty = false;
        }

        var result = new List<NodeId>(k);
        Collect(0, _sorted.Length, 0, target, k, result);
        result.Sort((a, b) => (a ^ target).CompareTo(b ^ target));
        return result;
    }

    /// <summary>Adds up to <paramref name="need"/> ids of [lo, hi) — which share their first <paramref name="bit"/>
    /// bits — nearest subtree first.</summary>
    private void Collect(int lo, int hi, int bit, NodeId target, int need, List<NodeId> into)
    {
        while (true)
        {
            if (need <= 0 || lo >= hi) return;
            if (hi - lo <= need || bit >= NodeId.Bits)
            {
                for (var i = lo; i < hi && need > 0; i++, need--) into.Add(_sorted[i]);
                return;
            }

            // First index in [lo, hi) whose bit is set: ids with the bit clear sort first.
            int a = lo, b = hi;
            while (a < b)
            {
                var m = (a + b) >>> 1;
                if (_sorted[m].GetBit(bit)) b = m;
                else a = m + 1;
            }

            var targetBit = target.GetBit(bit);
            var (nearLo, nearHi, farLo, farHi) = targetBit ? (a, hi, lo, a) : (lo, a, a, hi);
            var before = into.Count;
            Collect(nearLo, nearHi, bit + 1, target, need, into);
            need -= into.Count - before;
            (lo, hi, bit) = (farLo, farHi, bit + 1);
        }
    }
}
