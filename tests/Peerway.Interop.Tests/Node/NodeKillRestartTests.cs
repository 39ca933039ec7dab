using System.Globalization;
using System.Net;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.Node;

/// <summary>
/// Issue 18 item 5: <c>peerway node</c> with several torrents (added as magnet links naming their seeder, over
/// Transmission RPC by <c>transmission-remote</c>; the info dictionaries come from the seeders, BEP 9) is killed with SIGKILL at random moments of the downloads and
/// restarted on the same data directory, 50 times. After each restart every torrent is back (listed by
/// <c>transmission-remote</c>), no piece verified on disk before a kill is sent again, what is sent again is no more
/// than what was in flight (sent, not yet on disk) at the kill, and at the end every file has the right SHA-256. Each
/// seeder runs in-process, rate-capped so the kills land mid-download, and counts what it serves per piece in each
/// round; the test hashes the partial files itself after each kill.
/// </summary>
public sealed class NodeKillRestartTests(ITestOutputHelper output)
{
    private const int Kills = 50;
    private const int Torrents = 3;
    private const int FileSize = 8 * 1024 * 1024;
    private const int PieceSize = 32 * 1024;
    private const long SeederRate = 64 * 1024;

    [RequiresToolFact("transmission-remote")]
    public async Task Node_killed_50_times_mid_download_keeps_every_torrent_and_downloads_no_verified_piece_again()
    {
        await using var env = new TorrentInterop("node-kill9");
        var gate = new Lock();
        var live = 0;
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var swarms = new List<Swarm>();
        var seeders = new List<TorrentSession>();
        try
        {
            for (var i = 0; i < Torrents; i++)
            {
                var source = Path.Combine(env.Root, $"src{i}", $"payload{i}.bin");
                var sha = await TorrentInterop.RandomFileAsync(source, FileSize + (i * 12345));
                var torrentPath = Path.Combine(env.Root, $"payload{i}.torrent");
                var (code, _, err) = await env.RunPeerwayAsync(TimeSpan.FromMinutes(4), "create", source, "-o", torrentPath, "--piece-size", PieceSize.ToString(CultureInfo.InvariantCulture));
                Assert.True(code == 0, err);
                Assert.True(MetainfoParser.TryParse(await File.ReadAllBytesAsync(torrentPath), out var meta, out _));
                var swarm = new Swarm(meta!, sha);
                var seeder = new TorrentSession(meta!.InfoHash, meta.Info, new FileStorageFactory(new FileStorageOptions(), TimeProvider.System),
                    Path.GetDirectoryName(source)!, seedOnly: true, new TorrentSessionOptions { ListenAddress = IPAddress.Loopback, UploadRateLimit = SeederRate },
                    new TcpStreamTransport(), TimeProvider.System);
                seeders.Add(seeder);
                seeder.BlockUploaded += (_, block) =>
                {
                    lock (gate) swarm.Served[block.Piece] += block.Length;
                    serving.TrySetResult();
                };
                seeder.PeerConnected += _ =>
                {
                    lock (gate) live++;
                };
                seeder.PeerDisconnected += _ =>
                {
                    lock (gate)
                    {
                        if (--live == 0) idle.TrySetResult();
                    }
                };
                await seeder.StartAsync(CancellationToken.None);
                swarm.Port = seeder.ListenPort;
                swarms.Add(swarm);
            }

            var data = Path.Combine(env.Root, "node");
            var random = new Random(1818);
            var log = new System.Text.StringBuilder();
            long totalServed = 0, totalInFlight = 0;
            var midDownloadKills = 0;
            for (var round = 0; round <= Kills; round++)
            {
                lock (gate)
                {
                    foreach (var s in swarms) Array.Clear(s.Served);
                    idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    serving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                var node = await RunningNode.StartAsync(env, data);
                if (round == 0)
                {
                    for (var i = 0; i < swarms.Count; i++)
                    {
                        var magnet = new MagnetLink(swarms[i].Meta.InfoHash, swarms[i].Meta.Info.Name, [], [$"127.0.0.1:{swarms[i].Port}"]).ToString();
                        var (added, stdout, stderr) = await TransmissionRemote.RunAsync(env, node, "-a", magnet);
                        Assert.True(added == 0 && stdout.Contains("success", StringComparison.Ordinal), stdout + stderr);
                    }
                }
                else
                {
                    // Every torrent is back after the kill, before anything else is asked of the node.
                    var rows = await TransmissionRemote.ListAsync(env, node);
                    for (var i = 0; i < swarms.Count; i++)
                    {
                        Assert.True(rows.ContainsKey(i + 1), $"round {round}: torrent {i + 1} is gone after the restart\n{string.Join('\n', rows.Values)}\n{node.Process.Stderr}");
                        Assert.Contains(swarms[i].Meta.Info.Name, rows[i + 1], StringComparison.Ordinal);
                    }
                }

                var allOnDisk = swarms.All(s => s.Durable.All(d => d));
                if (round < Kills)
                {
                    if (!allOnDisk)
                    {
                        await serving.Task.WaitAsync(TimeSpan.FromMinutes(2));
                        midDownloadKills++;
                    }

                    // The random moment of the kill (not a synchronisation: any moment must be safe).
                    await Task.Delay(random.Next(100, 1500));
                    node.Process.Kill();
                    Assert.True(await node.Process.WaitForExitAsync(TimeSpan.FromSeconds(20)));
                }
                else
                {
                    await TransmissionRemote.WaitForListAsync(env, node,
                        r => Enumerable.Range(1, swarms.Count).All(id => r.TryGetValue(id, out var row) && row.Contains("100%", StringComparison.Ordinal)), TimeSpan.FromMinutes(4));
                    Assert.True(await node.TerminateAsync() == 0, $"peerway node did not exit 0 on SIGTERM\n{node.Process.Stderr}");
                }

                lock (gate)
                {
                    if (live == 0) idle.TrySetResult();
                }

                await idle.Task.WaitAsync(TimeSpan.FromSeconds(60));
                var line = new System.Text.StringBuilder().Append(CultureInfo.InvariantCulture, $"round {round}:");
                foreach (var s in swarms)
                {
                    long[] served;
                    lock (gate) served = [.. s.Served];
                    var info = s.Meta.Info;
                    var now = KillRestartTests.DurablePieces(Path.Combine(data, "downloads", info.Name), info);
                    long reDownloaded = 0;
                    for (var p = 0; p < info.PieceCount; p++)
                    {
                        Assert.False(s.Durable[p] && !now[p], $"round {round}: {info.Name} piece {p} was verified on disk and is gone\n{log}");
                        Assert.False(s.Durable[p] && served[p] > 0, $"round {round}: {info.Name} piece {p} was verified on disk before this run and was downloaded again\n{log}");
                        if (served[p] > 0 && s.EverServed[p]) reDownloaded += served[p];
                    }

                    // Sent again ≤ in flight at the previous kill (sent to the node and not verified on disk then).
                    var inFlightBefore = s.InFlightBytes();
                    Assert.True(reDownloaded <= inFlightBefore, $"round {round}: {info.Name} re-downloaded {reDownloaded} B but only {inFlightBefore} B were in flight\n{log}");
                    for (var p = 0; p < info.PieceCount; p++) s.EverServed[p] |= served[p] > 0;
                    s.Durable = now;
                    var inFlight = s.InFlightBytes();
                    totalServed += served.Sum();
                    if (round < Kills) totalInFlight += inFlight;
                    line.Append(CultureInfo.InvariantCulture, $" [{info.Name}: served {served.Sum() / 1024} KiB, again {reDownloaded / 1024} KiB, on disk {now.Count(d => d)}/{info.PieceCount}, in flight {inFlight / 1024} KiB]");
                }

                log.AppendLine(line.ToString());
            }

            log.AppendLine(CultureInfo.InvariantCulture, $"kills that landed mid-download: {midDownloadKills} of {Kills}; served {totalServed} B for {swarms.Sum(s => s.Meta.Info.TotalLength)} B, in flight at kills {totalInFlight} B");
            output.WriteLine(log.ToString());
            foreach (var s in swarms)
            {
                Assert.All(s.Durable, Assert.True);
                Assert.Equal(s.Sha256, TorrentInterop.Sha256OfFile(Path.Combine(data, "downloads", s.Meta.Info.Name)));
            }

            // Everything the seeders sent beyond one copy is accounted for by what was in flight at the kills.
            Assert.True(totalServed <= swarms.Sum(s => s.Meta.Info.TotalLength) + totalInFlight, log.ToString());
            Assert.True(midDownloadKills >= Kills / 2, $"only {midDownloadKills} kills landed mid-download\n{log}");
        }
        finally
        {
            foreach (var seeder in seeders) await seeder.DisposeAsync();
        }
    }

    /// <summary>One torrent of the test: its seeder's per-piece counts for the current round, and the test's own view of the disk.</summary>
    private sealed class Swarm(TorrentMetainfo meta, byte[] sha256)
    {
        public TorrentMetainfo Meta { get; } = meta;

        public byte[] Sha256 { get; } = sha256;

        public int Port { get; set; }

        public long[] Served { get; } = new long[meta.Info.PieceCount];

        public bool[] EverServed { get; } = new bool[meta.Info.PieceCount];

        public bool[] Durable { get; set; } = new bool[meta.Info.PieceCount];

        /// <summary>Bytes of pieces the node was sent but that are not verified on disk: lost by a kill.</summary>
        public long InFlightBytes()
        {
            long bytes = 0;
            for (var p = 0; p < EverServed.Length; p++)
            {
                if (EverServed[p] && !Durable[p]) bytes += Meta.Info.PieceSize(p);
            }

            return bytes;
        }
    }
}
