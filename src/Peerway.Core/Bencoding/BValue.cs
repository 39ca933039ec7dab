using System.Text;

namespace Peerway.Core.Bencoding;

/// <summary>A decoded bencode value (BEP 3): byte string, integer, list or dictionary.</summary>
public abstract record BValue
{
    private protected BValue()
    {
    }
}

/// <summary>A byte string. Not necessarily UTF-8.</summary>
public sealed record BString(ReadOnlyMemory<byte> Value) : BValue
{
    public BString(string utf8) : this(Encoding.UTF8.GetBytes(utf8))
    {
    }

    public string Utf8 => Encoding.UTF8.GetString(Value.Span);

    public bool Equals(BString? other) => other is not null && Value.Span.SequenceEqual(other.Value.Span);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(Value.Span);
        return h.ToHashCode();
    }

    public override string ToString() => Utf8;
}

/// <summary>A signed 64-bit integer.</summary>
public sealed record BInteger(long Value) : BValue;

/// <summary>An ordered list.</summary>
public sealed record BList(IReadOnlyList<BValue> Items) : BValue
{
    public bool Equals(BList? other) => other is not null && Items.SequenceEqual(other.Items);

    public override int GetHashCode() => Items.Count;
}

/// <summary>A dictionary; keys are byte strings kept in ascending raw-byte order (BEP 3).</summary>
public sealed record BDictionary : BValue
{
    private readonly SortedDictionary<byte[], BValue> _entries = new(ByteArrayComparer.Instance);

    public BDictionary()
    {
    }

    public BDictionary(IEnumerable<KeyValuePair<byte[], BValue>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var (k, v) in entries) _entries[k] = v;
    }

    public int Count => _entries.Count;

    public IEnumerable<KeyValuePair<byte[], BValue>> Entries => _entries;

    public BValue? this[string key]
    {
        get => _entries.TryGetValue(Encoding.UTF8.GetBytes(key), out var v) ? v : null;
        set
        {
            var k = Encoding.UTF8.GetBytes(key);
            if (value is null) _entries.Remove(k);
            else _entries[k] = value;
        }
    }

    public bool TryGet(ReadOnlySpan<byte> key, out BValue? value) => _entries.TryGetValue(key.ToArray(), out value);

    public void Add(string key, BValue value) => _entries.Add(Encoding.UTF8.GetBytes(key), value);

    public void Add(byte[] key, BValue value) => _entries.Add(key, value);

    public bool Equals(BDictionary? other) =>
        other is not null && _entries.Count == other._entries.Count &&
        _entries.All(e => other._entries.TryGetValue(e.Key, out var v) && Equals(v, e.Value));

    public override int GetHashCode() => _entries.Count;
}

/// <summary>Orders byte arrays by raw bytes, as bencode dictionaries require.</summary>
public sealed class ByteArrayComparer : IComparer<byte[]>, IEqualityComparer<byte[]>
{
    public static ByteArrayComparer Instance { get; } = new();

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var h = new HashCode();
        h.AddBytes(obj);
        return h.ToHashCode();
    }
}
