using System.Globalization;
using System.Text;

namespace Peerway.Dht.Log;

/// <summary>What <see cref="LogDirectory.Verify"/> found: the length checked, and the first problem if any.</summary>
public sealed record LogVerification(long Length, LogHead? Head, long? TamperedEntry, ForkProof? Fork, string? Problem)
{
    /// <summary>True when every entry matches the signed heads and no fork is known.</summary>
    public bool Ok => Problem is null;
}

/// <summary>
/// A tamper-evident log on disk: <c>log.name</c>, <c>log.pub</c> (the owner's public key, hex), <c>log.key</c> (the
/// owner's seed, hex, mode 0600; absent in a follower's copy), <c>entries/NNNNNNNNNN</c> (one file per entry),
/// <c>leaves</c> (the 32-byte RFC 9162 leaf hashes, concatenated), <c>heads/NNNNNNNNNN</c> (each signed head as its
/// BEP 44 value and signature) and <c>forks/</c> (fork proofs kept once seen). Only the owner appends. Not thread-safe:
/// one process owns a directory at a time.
/// </summary>
public sealed class LogDirectory
{
    /// <summary>Largest entry (1 MiB): a follower fetches one entry per reply, so this bounds what a peer may send.</summary>
    public const int MaxEntryLength = 1 << 20;

    private const int IndexDigits = 10;
    private readonly string _dir;
    private readonly List<byte[]> _leaves;

    private LogDirectory(string dir, string name, byte[] publicKey, List<byte[]> leaves)
    {
        _dir = dir;
        Name = name;
        PublicKey = publicKey;
        _leaves = leaves;
    }

    /// <summary>The directory this log lives in.</summary>
    public string DirectoryPath => _dir;

    /// <summary>The log's name (its heads' BEP 44 salt).</summary>
    public string Name { get; }

    /// <summary>The owner's ed25519 public key.</summary>
    public byte[] PublicKey { get; }

    /// <summary>Entries held.</summary>
    public long Length => _leaves.Count;

    /// <summary>Creates an empty log owned by <paramref name="key"/> in <paramref name="dir"/> (which must not exist or be empty).</summary>
    public static LogDirectory Create(string dir, string name, DhtSigningKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        LogHead.CheckName(name);
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any()) throw new IOException($"'{dir}' is not empty");
        Directory.CreateDirectory(Path.Combine(dir, "entries"));
        Directory.CreateDirectory(Path.Combine(dir, "heads"));
        File.WriteAllText(Path.Combine(dir, "log.name"), name + "\n");
        File.WriteAllText(Path.Combine(dir, "log.pub"), Convert.ToHexStringLower(key.PublicKey) + "\n");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var secret = new FileStream(Path.Combine(dir, "log.key"), options))
        {
            secret.Write(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(key.ExportSeed()) + "\n"));
        }

        File.WriteAllBytes(Path.Combine(dir, "leaves"), []);
        return new LogDirectory(dir, name, key.PublicKey, []);
    }

    /// <summary>Creates an empty follower's copy of the log <paramref name="name"/> of <paramref name="publicKey"/> in
    /// <paramref name="dir"/> (no owner key: it only takes entries that verify against signed heads).</summary>
    public static LogDirectory CreateReplica(string dir, string name, ReadOnlySpan<byte> publicKey)
    {
        LogHead.CheckName(name);
        if (publicKey.Length != Bep44.PublicKeyLength) throw new ArgumentException("An ed25519 public key is 32 bytes.", nameof(publicKey));
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any()) throw new IOException($"'{dir}' is not empty");
        Directory.CreateDirectory(Path.Combine(dir, "entries"));
        Directory.CreateDirectory(Path.Combine(dir, "heads"));
        File.WriteAllText(Path.Combine(dir, "log.name"), name + "\n");
        File.WriteAllText(Path.Combine(dir, "log.pub"), Convert.ToHexStringLower(publicKey) + "\n");
        File.WriteAllBytes(Path.Combine(dir, "leaves"), []);
        return new LogDirectory(dir, name, publicKey.ToArray(), []);
    }

    /// <summary>Opens a log directory (reading the leaf hashes; entries are checked by <see cref="Verify"/>).</summary>
    public static LogDirectory Open(string dir)
    {
        var name = File.ReadAllText(Path.Combine(dir, "log.name")).TrimEnd('\n');
        var publicKey = Convert.FromHexString(File.ReadAllText(Path.Combine(dir, "log.pub")).Trim());
        var bytes = File.ReadAllBytes(Path.Combine(dir, "leaves"));
        if (bytes.Length % MerkleTree.HashLength != 0) throw new InvalidDataException($"'{dir}/leaves' is not a whole number of hashes");
        var leaves = new List<byte[]>(bytes.Length / MerkleTree.HashLength);
        for (var i = 0; i < bytes.Length; i += MerkleTree.HashLength) leaves.Add(bytes[i..(i + MerkleTree.HashLength)]);
        return new LogDirectory(dir, name, publicKey, leaves);
    }

    /// <summary>The owner's key, when this copy has it.</summary>
    public DhtSigningKey? OwnerKey()
    {
        var path = Path.Combine(_dir, "log.key");
        if (!File.Exists(path)) return null;
        var key = DhtSigningKey.FromSeed(Convert.FromHexString(File.ReadAllText(path).Trim()));
        if (!key.PublicKey.AsSpan().SequenceEqual(PublicKey))
        {
            key.Dispose();
            throw new InvalidDataException($"'{path}' is not the key of '{_dir}/log.pub'");
        }

        return key;
    }

    /// <summary>Appends an entry and signs the new head (the owner only); returns the head to publish.</summary>
    public LogHead Append(ReadOnlySpan<byte> entry)
    {
        using var key = OwnerKey() ?? throw new InvalidOperationException("only the owner (with log.key) appends to a log");
        if (entry.Length > MaxEntryLength) throw new ArgumentException($"a log entry is at most {MaxEntryLength} bytes (got {entry.Length})", nameof(entry));
        WriteEntry(entry);
        var head = LogHead.Sign(key, Name, _leaves.Count, MerkleTree.Root(_leaves, _leaves.Count));
        SaveHead(head);
        return head;
    }

    /// <summary>
    /// A follower takes <paramref name="entries"/> (those after the ones held) and the signed <paramref name="head"/>
    /// that covers them: kept only when the head verifies for this log, its length is the new length and the leaf
    /// hashes reproduce its root — which proves both every new entry and that the old entries are a prefix of the new
    /// log (RFC 9162 §2.1.4's property, checked directly). Throws <see cref="InvalidDataException"/> and keeps nothing
    /// otherwise.
    /// </summary>
    public void AppendVerified(IReadOnlyList<byte[]> entries, LogHead head)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(head);
        if (!head.Verifies() || head.Name != Name || !head.PublicKey.AsSpan().SequenceEqual(PublicKey)) throw new InvalidDataException("the head does not verify for this log");
        if (head.Length != _leaves.Count + entries.Count) throw new InvalidDataException($"the head covers {head.Length} entries, not {_leaves.Count} + {entries.Count}");
        List<byte[]> leaves = [.. _leaves, .. entries.Select(e => MerkleTree.LeafHash(e))];
        if (!MerkleTree.Root(leaves, head.Length).AsSpan().SequenceEqual(head.Root)) throw new InvalidDataException($"the entries do not hash to the signed root of length {head.Length}");
        foreach (var entry in entries) WriteEntry(entry);
        Receive(head);
    }

    /// <summary>The RFC 9162 root of the first <paramref name="size"/> entries.</summary>
    public byte[] Root(long size) => MerkleTree.Root(_leaves, size);

    /// <summary>The latest signed head held, or null for an empty log.</summary>
    public LogHead? LatestHead() => ReadHead(HeadPath(Length)) ?? (Heads() is { Count: > 0 } heads ? heads[^1] : null);

    /// <summary>Entry <paramref name="index"/> as stored.</summary>
    public byte[] ReadEntry(long index) => File.ReadAllBytes(EntryPath(index));

    /// <summary>The signed heads held, by length.</summary>
    public IReadOnlyList<LogHead> Heads()
    {
        var heads = new List<LogHead>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(_dir, "heads")).Order(StringComparer.Ordinal))
        {
            if (ReadHead(file) is { } head) heads.Add(head);
        }

        return heads.OrderBy(h => h.Length).ToList();
    }

    /// <summary>Keeps a head received from someone else; a second, different head of a length already held is a fork:
    /// both are kept in <c>forks/</c> and the proof returned.</summary>
    public ForkProof? Receive(LogHead head)
    {
        ArgumentNullException.ThrowIfNull(head);
        if (!head.Verifies() || head.Name != Name || !head.PublicKey.AsSpan().SequenceEqual(PublicKey)) throw new InvalidDataException("the head does not verify for this log");
        var existing = ReadHead(HeadPath(head.Length));
        if (existing is null)
        {
            SaveHead(head);
            return null;
        }

        if (existing.Root.AsSpan().SequenceEqual(head.Root)) return null;
        var fork = new ForkProof(existing, head);
        var forks = Directory.CreateDirectory(Path.Combine(_dir, "forks"));
        var n = forks.EnumerateFiles().Count();
        File.WriteAllText(Path.Combine(forks.FullName, n.ToString("D4", CultureInfo.InvariantCulture)), HeadText(existing) + HeadText(head));
        return fork;
    }

    /// <summary>
    /// Checks the copy: every signed head verifies, the leaf hashes reproduce every head's root, and every entry hashes
    /// to its leaf — the first that does not is reported by index; a kept fork proof is reported too.
    /// </summary>
    public LogVerification Verify()
    {
        var heads = Heads();
        var latest = heads.Count > 0 ? heads[^1] : null;
        if (Directory.Exists(Path.Combine(_dir, "forks")))
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(_dir, "forks")).Order(StringComparer.Ordinal))
            {
                var lines = File.ReadAllLines(file);
                if (lines.Length >= 2 && ParseHead(lines[0]) is { } a && ParseHead(lines[1]) is { } b && new ForkProof(a, b) is var fork && fork.IsValid())
                {
                    return new LogVerification(Length, latest, null, fork, $"fork: two signed heads of length {a.Length} with different roots");
                }
            }
        }

        var headFiles = Directory.EnumerateFiles(Path.Combine(_dir, "heads")).Count();
        if (headFiles != heads.Count) return new LogVerification(Length, latest, null, null, $"{headFiles - heads.Count} signed head file(s) do not verify");
        foreach (var head in heads)
        {
            if (head.Length > _leaves.Count) return new LogVerification(Length, latest, null, null, $"a signed head covers {head.Length} entries, only {_leaves.Count} held");
            if (!MerkleTree.Root(_leaves, head.Length).AsSpan().SequenceEqual(head.Root))
            {
                return new LogVerification(Length, latest, null, null, $"the leaf hashes do not match the signed head of length {head.Length}");
            }
        }

        var signed = latest?.Length ?? 0;
        for (var i = 0; i < _leaves.Count; i++)
        {
            var path = EntryPath(i);
            if (!File.Exists(path) || !MerkleTree.LeafHash(File.ReadAllBytes(path)).AsSpan().SequenceEqual(_leaves[i]))
            {
                return new LogVerification(Length, latest, i, null, $"entry {i} does not match its signed hash");
            }
        }

        return signed < _leaves.Count
            ? new LogVerification(Length, latest, null, null, $"entries {signed}..{_leaves.Count - 1} are not covered by a signed head")
            : new LogVerification(Length, latest, null, null, null);
    }

    /// <summary>RFC 9162 inclusion proof of entry <paramref name="index"/> in the first <paramref name="size"/> entries.</summary>
    public IReadOnlyList<byte[]> InclusionProof(long index, long size) => MerkleTree.InclusionProof(_leaves, index, size);

    /// <summary>RFC 9162 consistency proof from <paramref name="oldSize"/> to <paramref name="newSize"/> entries.</summary>
    public IReadOnlyList<byte[]> ConsistencyProof(long oldSize, long newSize) => MerkleTree.ConsistencyProof(_leaves, oldSize, newSize);

    private void WriteEntry(ReadOnlySpan<byte> entry)
    {
        File.WriteAllBytes(EntryPath(_leaves.Count), entry.ToArray());
        var leaf = MerkleTree.LeafHash(entry);
        using (var leaves = new FileStream(Path.Combine(_dir, "leaves"), FileMode.Append, FileAccess.Write))
        {
            leaves.Write(leaf);
        }

        _leaves.Add(leaf);
    }

    private string EntryPath(long index) => Path.Combine(_dir, "entries", index.ToString("D" + IndexDigits, CultureInfo.InvariantCulture));

    private string HeadPath(long length) => Path.Combine(_dir, "heads", length.ToString("D" + IndexDigits, CultureInfo.InvariantCulture));

    private void SaveHead(LogHead head) => File.WriteAllText(HeadPath(head.Length), HeadText(head));

    /// <summary>One line: length, root and signature in hex (with the log's key and name, enough to check it).</summary>
    private static string HeadText(LogHead head) =>
        string.Create(CultureInfo.InvariantCulture, $"{Convert.ToHexStringLower(head.PublicKey)} {Convert.ToHexStringLower(Encoding.UTF8.GetBytes(head.Name))} {head.Length} {Convert.ToHexStringLower(head.Root)} {Convert.ToHexStringLower(head.Signature)}\n");

    private static LogHead? ReadHead(string path) => File.Exists(path) ? ParseHead(File.ReadAllText(path).Trim()) : null;

    private static LogHead? ParseHead(string line)
    {
        var parts = line.Split(' ');
        if (parts.Length != 5 || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var length)) return null;
        try
        {
            var head = new LogHead(Convert.FromHexString(parts[0]), Encoding.UTF8.GetString(Convert.FromHexString(parts[1])), length,
                Convert.FromHexString(parts[3]), Convert.FromHexString(parts[4]));
            return head.Verifies() ? head : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
