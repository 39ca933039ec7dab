using System.Net;
using Peerway.Core;

namespace Peerway.Dht;

/// <summary>
/// BEP 44 items this node stores for others, by target: bounded in total and per storing IP (a flood of puts from one
/// address evicts that address's own oldest items, not everyone's), expiring after a lifetime unless put again
/// ("republished"). Only verified items are stored (<see cref="DhtNode"/> checks before <see cref="Put"/>). Not
/// thread-safe: owned by <see cref="DhtNode"/> under its lock.
/// </summary>
internal sealed class ItemStore(int maxTotal, int maxPerIp, TimeSpan lifetime)
{
    // Created on the first put: most nodes of a simulated network never store an item.
    private Dictionary<NodeId, Entry>? _items;
    private Dictionary<IPAddress, int>? _perIp;
    private LinkedList<Entry>? _all; // least recently put first

    public int Count => _all?.Count ?? 0;

    public DhtItem? Get(NodeId target, DateTimeOffset now)
    {
        Expire(now);
        return _items is not null && _items.TryGetValue(target, out var entry) ? entry.Item : null;
    }

    /// <summary>Stores (or refreshes) <paramref name="item"/>, put by <paramref name="from"/>.</summary>
    public void Put(DhtItem item, IPAddress from, DateTimeOffset now)
    {
        Expire(now);
        _items ??= [];
        _perIp ??= [];
        _all ??= new LinkedList<Entry>();
        if (_items.TryGetValue(item.Target, out var existing)) Remove(existing);
        if (_perIp.GetValueOrDefault(from) >= maxPerIp)
        {
            // The flooding address pays: its own least recently put item goes.
            for (var node = _all.First; node is not null; node = node.Next)
            {
                if (!node.Value.From.Equals(from)) continue;
                Remove(node.Value);
                break;
            }
        }

        if (_all.Count >= maxTotal) Remove(_all.First!.Value);
        var entry = new Entry(item, from, now);
        entry.Node = _all.AddLast(entry);
        _items[item.Target] = entry;
        _perIp[from] = _perIp.GetValueOrDefault(from) + 1;
    }

    public void Expire(DateTimeOffset now)
    {
        while (_all?.First is { } oldest && now - oldest.Value.Stored >= lifetime) Remove(oldest.Value);
    }

    private void Remove(Entry entry)
    {
        _all!.Remove(entry.Node!);
        _items!.Remove(entry.Item.Target);
        var left = _perIp![entry.From] - 1;
        if (left == 0) _perIp.Remove(entry.From);
        else _perIp[entry.From] = left;
    }

    private sealed class Entry(DhtItem item, IPAddress from, DateTimeOffset stored)
    {
        public DhtItem Item { get; } = item;

        public IPAddress From { get; } = from;

        public DateTimeOffset Stored { get; } = stored;

        public LinkedListNode<Entry>? Node { get; set; }
    }
}
