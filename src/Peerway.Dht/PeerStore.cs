using System.Net;
using Peerway.Core;

namespace Peerway.Dht;

/// <summary>
/// Announced peers per info-hash (BEP 5 announce_peer), expiring after a TTL and bounded in total and per info-hash;
/// the oldest announcement is evicted first. Not thread-safe: owned by <see cref="DhtNode"/> under its lock.
/// </summary>
internal sealed class PeerStore(int maxTotal, int maxPerInfoHash, TimeSpan ttl)
{
    // Created on the first announce: most nodes of a large network never store a peer (a simulator holds 10^6 stores).
    private Dictionary<NodeId, Swarm>? _swarms;
    private LinkedList<Entry>? _all; // oldest first

    public int Count => _all?.Count ?? 0;

    public int InfoHashCount => _swarms?.Count ?? 0;

    public void Add(NodeId infoHash, IPEndPoint peer, DateTimeOffset now)
    {
        Expire(now);
        _swarms ??= [];
        _all ??= new LinkedList<Entry>();
        if (!_swarms.TryGetValue(infoHash, out var swarm))
        {
            swarm = new Swarm();
            _swarms.Add(infoHash, swarm);
        }

        if (swarm.ByPeer.TryGetValue(peer, out var existing))
        {
            Remove(existing); // a re-announce refreshes the entry: it becomes the newest.
            _swarms.TryAdd(infoHash, swarm);
        }
        else if (swarm.Order.Count >= maxPerInfoHash)
        {
            Remove(swarm.Order.First!.Value);
        }

        if (_all.Count >= maxTotal) Remove(_all.First!.Value);
        _swarms.TryAdd(infoHash, swarm);
        var entry = new Entry(infoHash, peer, now, swarm);
        entry.GlobalNode = _all.AddLast(entry);
        entry.SwarmNode = swarm.Order.AddLast(entry);
        swarm.ByPeer[peer] = entry;
    }

    /// <summary>Up to <paramref name="max"/> live peers of <paramref name="infoHash"/>, newest first, of one address family.</summary>
    /// <remarks><paramref name="into"/> (cleared first) avoids allocating the result.</remarks>
    public List<IPEndPoint> Get(NodeId infoHash, DateTimeOffset now, int max, System.Net.Sockets.AddressFamily family, List<IPEndPoint>? into = null)
    {
        Expire(now);
        var result = into ?? [];
        result.Clear();
        if (_swarms is null || !_swarms.TryGetValue(infoHash, out var swarm)) return result;
        for (var node = swarm.Order.Last; node is not null && result.Count < max; node = node.Previous)
        {
            if (node.Value.Peer.AddressFamily == family) result.Add(node.Value.Peer);
        }

        return result;
    }

    /// <summary>BEP 51: up to <paramref name="max"/> info-hashes stored here, chosen at random, written as 20-byte ids
    /// into <paramref name="destination"/>; returns how many.</summary>
    public int Sample(DateTimeOffset now, int max, Random random, Span<byte> destination)
    {
        Expire(now);
        if (_swarms is null || _swarms.Count == 0) return 0;
        var count = Math.Min(max, _swarms.Count);
        // Reservoir sampling over the keys: a uniform subset without copying them all.
        var chosen = new NodeId[count];
        var seen = 0;
        foreach (var infoHash in _swarms.Keys)
        {
            if (seen < count) chosen[seen] = infoHash;
            else if (random.Next(seen + 1) is var j && j < count) chosen[j] = infoHash;
            seen++;
        }

        for (var i = 0; i < count; i++) chosen[i].WriteTo(destination.Slice(i * NodeId.Length, NodeId.Length));
        return count;
    }

    /// <summary>Drops announcements older than the TTL.</summary>
    public void Expire(DateTimeOffset now)
    {
        while (_all?.First is { } first && now - first.Value.Added >= ttl) Remove(first.Value);
    }

    private void Remove(Entry entry)
    {
        _all!.Remove(entry.GlobalNode!);
        entry.Swarm.Order.Remove(entry.SwarmNode!);
        entry.Swarm.ByPeer.Remove(entry.Peer);
        if (entry.Swarm.Order.Count == 0) _swarms!.Remove(entry.InfoHash);
    }

    private sealed class Swarm
    {
        public Dictionary<IPEndPoint, Entry> ByPeer { get; } = [];

        public LinkedList<Entry> Order { get; } = new();
    }

    private sealed class Entry(NodeId infoHash, IPEndPoint peer, DateTimeOffset added, Swarm swarm)
    {
        public NodeId InfoHash { get; } = infoHash;

        public IPEndPoint Peer { get; } = peer;

        public DateTimeOffset Added { get; } = added;

        public Swarm Swarm { get; } = swarm;

        public LinkedListNode<Entry>? GlobalNode { get; set; }

        public LinkedListNode<Entry>? SwarmNode { get; set; }
    }
}
