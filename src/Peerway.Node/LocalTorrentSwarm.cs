using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;

namespace Peerway.Node;

/// <summary>Settings of the file-sharing demo: one seeder, N downloaders, a magnet link, the DHT as the only peer source.</summary>
public sealed record LocalTorrentSwarmOptions
{
    public int Peers { get; init; } = 8;

    public long FileSize { get; init; } = 64L * 1024 * 1024;

    /// <summary>DHT nodes besides the torrent participants' own.</summary>
    public int ExtraDhtNodes { get; init; } = 16;

    /// <summary>Seeder upload slots (BEP 3 choker); fewer slots make the swarm effect visible.</summary>
    public int SeederUploadSlots { get; init; } = 4;

    public int? Seed { get; init; }

    /// <summary>Seeder upload cap in bytes/s (swarm-scaling benchmarks); null: unlimited.</summary>
    public long? SeederUploadLimit { get; init; }

    /// <summary>Where the content and the downloads go; null: a new temporary directory, deleted afterwards.</summary>
    public string? Directory { get; init; }

    /// <summary>
    /// A peer from outside the swarm (the demo's <c>peerway node</c>): called once the seeder is up, with the magnet, the
    /// seeder's address, a DHT node of the swarm and the file's SHA-256; the swarm stays up until its task ends.
    /// </summary>
    public Func<LocalTorrentSwarmSeeding, CancellationToken, Task>? ExtraPeer { get; init; }

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Peers, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Peers, 100);
        ArgumentOutOfRangeException.ThrowIfLessThan(FileSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(FileSize, 16L * 1024 * 1024 * 1024);
        ArgumentOutOfRangeException.ThrowIfNegative(ExtraDhtNodes);
        ArgumentOutOfRangeException.ThrowIfLessThan(SeederUploadSlots, 1);
    }
}

/// <summary>What a peer from outside the swarm needs to join it (<see cref="LocalTorrentSwarmOptions.ExtraPeer"/>).</summary>
public sealed record LocalTorrentSwarmSeeding(string Magnet, IPEndPoint Seeder, IPEndPoint DhtNode, ReadOnlyMemory<byte> Sha256);

/// <summary>One downloader's result.</summary>
public sealed record TorrentPeerResult(int Index, IPEndPoint Address, TimeSpan Elapsed, long FromSeeder, long FromPeers, bool Verified);

public sealed record LocalTorrentSwarmReport(
    string Magnet,
    long FileSize,
    int PieceCount,
    int DhtNodes,
    IReadOnlyList<TorrentPeerResult> Peers,
    long SeederUploaded,
    TimeSpan Elapsed)
{
    public bool AllVerified => Peers.Count > 0 && Peers.All(p => p.Verified);

    /// <summary>Share of all downloaded bytes that came from other downloaders rather than the seeder.</summary>
    public double FromPeersShare
    {
        get
        {
            var total = Peers.Sum(p => p.FromSeeder + p.FromPeers);
            return total == 0 ? 0 : (double)Peers.Sum(p => p.FromPeers) / total;
        }
    }
}

/// <summary>Progress of one downloader (index, fraction done; -1 for the seeder's verification).</summary>
public sealed record TorrentSwarmProgress(int Peer, double Fraction, bool HasMetadata);

/// <summary>
/// The demo's file-sharing swarm on loopback: real UDP DHT nodes (<see cref="LocalDhtSwarm"/>), real TCP peers. The
/// seeder shares a generated file; every downloader starts from the magnet link alone (no tracker, no peer address):
/// it finds peers with DHT get_peers, fetches the info dictionary with BEP 9 and the pieces from everyone it meets.
/// </summary>
public static class LocalTorrentSwarm
{
    public static async Task<LocalTorrentSwarmReport> RunAsync(LocalTorrentSwarmOptions options, ILoggerFactory loggers,
        IProgress<TorrentSwarmProgress>? progress, IProgress<SwarmProgress>? dhtProgress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        options.Validate();
        var ownDirectory = options.Directory is null;
        var root = options.Directory ?? System.IO.Directory.CreateTempSubdirectory("peerway-demo-").FullName;
        var clock = Stopwatch.StartNew();
        try
        {
            // 1. The content: a generated file, and its torrent (no trackers: the magnet link carries only the info-hash).
            var source = Path.Combine(root, "seed", "peerway-demo.bin");
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(source)!);
            var sourceHash = await GenerateAsync(source, options.FileSize, options.Seed, ct).ConfigureAwait(false);
            var torrentBytes = await TorrentCreator.CreateAsync(source, new TorrentCreateOptions(), null, ct).ConfigureAwait(false);
            if (!MetainfoParser.TryParse(torrentBytes, out var meta, out var created)) throw new InvalidOperationException($"the torrent just created does not parse: {created.Describe()}");
            var info = meta!.Info;
            var magnet = new MagnetLink(info.InfoHash, info.Name, [], []);

            // 2. The DHT: one node per participant plus some others, joined into one network.
            var dhtOptions = new LocalSwarmOptions { Nodes = options.Peers + 1 + options.ExtraDhtNodes, InfoHashes = 1, Seed = options.Seed };
            await using var dht = LocalDhtSwarm.Start(dhtOptions, loggers, dhtProgress);
            await dht.JoinAsync(dhtProgress, ct).ConfigureAwait(false);
            var dhtSource = new DhtPeerSourceOptions { SearchInterval = TimeSpan.FromSeconds(2) };

            // 3. The seeder, then the downloaders with only the magnet link.
            var hosts = new List<TorrentHost>();
            try
            {
                var seederNode = dht.Hosts[0];
                var seeder = new TorrentHost(new TorrentHostOptions
                {
                    InfoHash = info.InfoHash,
                    Info = info,
                    Path = source,
                    ContentIsSource = true,
                    DhtPeerSource = dhtSource,
                    Session = new TorrentSessionOptions
                    {
                        ListenAddress = seederNode.LocalEndPoint.Address,
                        Choker = new ChokerOptions { UploadSlots = options.SeederUploadSlots },
                        RandomSeed = options.Seed,
                        UploadRateLimit = options.SeederUploadLimit,
                        SeedEachPieceOnceFirst = true,
                    },
                }, loggers, seederNode.Node);
                hosts.Add(seeder);
                await seeder.StartAsync(ct).ConfigureAwait(false);
                var extra = options.ExtraPeer is { } join
                    ? join(new LocalTorrentSwarmSeeding(magnet.ToString(), new IPEndPoint(seederNode.LocalEndPoint.Address, seeder.Client.Port), seederNode.LocalEndPoint, sourceHash), ct)
                    : Task.CompletedTask;

                var started = clock.Elapsed;
                var peers = new List<(TorrentHost Host, IPEndPoint Address, string Dir)>();
                for (var i = 1; i <= options.Peers; i++)
                {
                    var node = dht.Hosts[i];
                    var dir = Path.Combine(root, $"peer{i}");
                    var host = new TorrentHost(new TorrentHostOptions
                    {
                        InfoHash = magnet.InfoHash,
                        Path = dir,
                        DhtPeerSource = dhtSource,
                        Session = new TorrentSessionOptions
                        {
                            ListenAddress = node.LocalEndPoint.Address,
                            RandomSeed = options.Seed is { } s ? s + i : null,
                            PexInterval = TimeSpan.FromSeconds(5),
                        },
                    }, loggers, node.Node);
                    hosts.Add(host);
                    peers.Add((host, node.LocalEndPoint, dir));
                }

                var finished = new TimeSpan[peers.Count];
                await Task.WhenAll(peers.Select(p => p.Host.StartAsync(ct))).ConfigureAwait(false);
                var waits = peers.Select(async (p, i) =>
                {
                    await p.Host.Handle.Completed.WaitAsync(ct).ConfigureAwait(false);
                    finished[i] = clock.Elapsed - started;
                }).ToList();
                var all = Task.WhenAll(waits);
                while (!all.IsCompleted)
                {
                    await Task.WhenAny(all, Task.Delay(200, ct)).ConfigureAwait(false);
                    for (var i = 0; i < peers.Count; i++)
                    {
                        var s = peers[i].Host.Handle.GetStats();
                        progress?.Report(new TorrentSwarmProgress(i + 1, s.Progress, s.HasMetadata));
                    }
                }

                await all.ConfigureAwait(false);
                await extra.ConfigureAwait(false);
                var seederId = seeder.Client.PeerId;
                var results = new List<TorrentPeerResult>();
                for (var i = 0; i < peers.Count; i++)
                {
                    var stats = peers[i].Host.Handle.GetStats();
                    var fromSeeder = stats.ReceivedByPeerId.GetValueOrDefault(seederId);
                    var fromPeers = stats.ReceivedByPeerId.Where(kv => kv.Key != seederId).Sum(kv => kv.Value);
                    results.Add(new TorrentPeerResult(i + 1, peers[i].Address, finished[i], fromSeeder, fromPeers, false));
                }

                var seederUploaded = seeder.Handle.GetStats().Uploaded;
                foreach (var h in hosts) await h.DisposeAsync().ConfigureAwait(false);
                hosts.Clear();

                // 4. Check every byte: the SHA-256 of each download against the source.
                for (var i = 0; i < results.Count; i++)
                {
                    var file = Path.Combine(peers[i].Dir, info.Name);
                    results[i] = results[i] with { Verified = File.Exists(file) && (await HashFileAsync(file, ct).ConfigureAwait(false)).SequenceEqual(sourceHash) };
                }

                return new LocalTorrentSwarmReport(magnet.ToString(), info.TotalLength, info.PieceCount, dht.Hosts.Count, results, seederUploaded, clock.Elapsed);
            }
            finally
            {
                foreach (var h in hosts) await h.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            if (ownDirectory)
            {
                try
                {
                    System.IO.Directory.Delete(root, true);
                }
                catch (IOException)
                {
                    // Best effort: the OS cleans temporary directories.
                }
            }
        }
    }

    private static async Task<byte[]> GenerateAsync(string path, long size, int? seed, CancellationToken ct)
    {
        var random = seed is { } s ? new Random(s) : new Random();
        var buffer = new byte[1024 * 1024];
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        for (long done = 0; done < size;)
        {
            var n = (int)Math.Min(buffer.Length, size - done);
            random.NextBytes(buffer.AsSpan(0, n));
            sha.AppendData(buffer, 0, n);
            await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            done += n;
        }

        return sha.GetHashAndReset();
    }

    private static async Task<byte[]> HashFileAsync(string path, CancellationToken ct)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);
        return await SHA256.HashDataAsync(file, ct).ConfigureAwait(false);
    }
}
