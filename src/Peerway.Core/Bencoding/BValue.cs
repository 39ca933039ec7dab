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
    /// <summary>A byte string holding the UTF-8 encoding of <paramref name="utf8"/>.</summary>
    public BString(string utf8) : this(Encoding.UTF8.GetBytes(utf8))
    {
    }

    /// <summary>The bytes decoded as UTF-8 (invalid sequences become U+FFFD).</summary>
    public string Utf8 => Encoding.UTF8.GetString(Value.Span);

    /// <summary>True when <paramref name="other"/> holds the same bytes.</summary>
    public bool Equals(BString? other) => other is not null && Value.Span.SequenceEqual(other.Value.Span);

    /// <summary>A hash of the bytes, consistent with <see cref="Equals(BString?)"/>.</summary>
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(Value.Span);
        return h.ToHashCode();
    }

    /// <summary>The bytes decoded as UTF-8 (<see cref="Utf8"/>).</summary>
    public override string ToString() => Utf8;
}

/// <summary>A signed 64-bit integer.</summary>
public sealed record BInteger(long Value) : BValue;

/// <summary>An ordered list.</summary>
public sealed record BList(IReadOnlyList<BValue> Items) : BValue
{
    /// <summary>True when <paramref name="other"/> has equal items in the same order.</summary>
    public bool Equals(BList? other) => other is not null && Items.SequenceEqual(other.Items);

    /// <summary>The item count (equal lists have equal counts).</summary>
    public override int GetHashCode() => Items.Count;
}

/// <summary>A dictionary; keys are byte strings kept in ascending raw-byte order (BEP 3).</summary>
public sealed record BDictionary : BValue
{
    private readonly SortedDictionary<byte[], BValue> _entries = new(ByteArrayComparer.Instance);

    /// <summary>An empty dictionary.</summary>
    public BDictionary()
    {
    }

    /// <summary>A dictionary of <paramref name="entries"/>, sorted by key; a later duplicate key replaces an earlier one.</summary>
    public BDictionary(IEnumerable<KeyValuePair<byte[], BValue>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var (k, v) in entries) _entries[k] = v;
    }

    /// <summary>Number of entries.</summary>
    public int Count => _entries.Count;

    /// <summary>The entries in ascending raw-byte key order (the order they are encoded in).</summary>
    public IEnumerable<KeyValuePair<byte[], BValue>> Entries => _entries;

    /// <summary>The value under the UTF-8 bytes of <paramref name="key"/>, or <see langword="null"/> when absent. Setting
    /// <see langword="null"/> removes the entry.</summary>
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

    /// <summary>Looks up <paramref name="key"/> (raw bytes); false when absent.</summary>
    public bool TryGet(ReadOnlySpan<byte> key, out BValue? value) => _entries.TryGetValue(key.ToArray(), out value);

    /// <summary>Adds an entry under the UTF-8 bytes of <paramref name="key"/>. Throws <see cref="ArgumentException"/> when the key is present.</summary>
    public void Add(string key, BValue value) => _entries.Add(Encoding.UTF8.GetBytes(key), value);

    /// <summary>Adds an entry under <paramref name="key"/> (raw bytes, not copied). Throws <see cref="ArgumentException"/> when the key is present.</summary>
    public void Add(byte[] key, BValue value) => _entries.Add(key, value);

    /// <summary>True when <paramref name="other"/> has the same keys with equal values.</summary>
    public bool Equals(BDictionary? other) =>
        other is not null && _entries.Count == other._entries.Count &&
        _entries.All(e => other._entries.TryGetValue(e.Key, out var v) && Equals(v, e.Value));

    /// <summary>The entry count (equal dictionaries have equal counts).</summary>
    public override int GetHashCode() => _entries.Count;
}

/// <summary>Orders byte arrays by raw bytes, as bencode dictionaries require.</summary>
public sealed class ByteArrayComparer : IComparer<byte[]>, IEqualityComparer<byte[]>
{
    /// <summary>The shared instance (stateless).</summary>
    public static ByteArrayComparer Instance { get; } = new();

    /// <summary>Compares lexicographically by unsigned byte; a prefix sorts first; <see langword="null"/> compares as empty.</summary>
    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);

    /// <summary>True when both hold the same bytes; <see langword="null"/> equals empty.</summary>
    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    /// <summary>A hash of the bytes, consistent with <see cref="Equals(byte[], byte[])"/>.</summary>
    public int GetHashCode(byte[] obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var h = new HashCode();
        h.AddBytes(obj);
        return h.ToHashCode();
    }
}
