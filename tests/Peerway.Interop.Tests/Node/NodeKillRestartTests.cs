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
/// Issue 18 item 5: <c>peerway node</c> killed with SIGKILL at random moments of a download (added over Transmission
/// RPC by <c>transmission-remote</c>) and restarted on the same data directory: after each restart the torrent is back
/// (listed by <c>transmission-remote</c>), no piece verified on disk before a kill is sent again, and the download
/// finishes with the right bytes. The seeder runs in-process and counts what it serves per piece in each round; the
/// test hashes the partial file itself after each kill.
/// </summary>
public sealed class NodeKillRestartTests(ITestOutputHelper output)
{
    private const int Kills = 5;
    private const int FileSize = 24 * 1024 * 1024;
    private const int PieceSize = 64 * 1024;
    private const long SeederRate = 2 * 1024 * 1024;

    [RequiresToolFact("transmission-remote")]
    public async Task Node_killed_mid_download_comes_back_with_its_torrent_and_downloads_no_verified_piece_again()
    {
        await using var env = new TorrentInterop("node-kill9");
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (code, _, err) = await env.RunPeerwayAsync(TimeSpan.FromMinutes(4), "create", source, "-o", torrent, "--piece-size", PieceSize.ToString(CultureInfo.InvariantCulture));
        Assert.True(code == 0, err);
        Assert.True(MetainfoParser.TryParse(await File.ReadAllBytesAsync(torrent), out var meta, out _));
        var info = meta!.Info;

        var gate = new Lock();
        var served = new long[info.PieceCount];
        var live = 0;
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var seeder = new TorrentSession(meta.InfoHash, info, new FileStorageFactory(new FileStorageOptions(), TimeProvider.System),
            Path.GetDirectoryName(source)!, seedOnly: true, new TorrentSessionOptions { ListenAddress = IPAddress.Loopback, UploadRateLimit = SeederRate },
            new TcpStreamTransport(), TimeProvider.System);
        seeder.BlockUploaded += (_, block) =>
        {
            lock (gate) served[block.Piece] += block.Length;
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

        var data = Path.Combine(env.Root, "node");
        var file = Path.Combine(data, "downloads", info.Name);
        var magnet = new MagnetLink(meta.InfoHash, info.Name, [], [$"127.0.0.1:{seeder.ListenPort}"]).ToString();
        var random = new Random(1818);
        var durable = new bool[info.PieceCount];
        var log = new System.Text.StringBuilder();
        for (var round = 0; round <= Kills; round++)
        {
            lock (gate)
            {
                Array.Clear(served);
                idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                serving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            var node = await RunningNode.StartAsync(env, data);
            if (round == 0)
            {
                var (added, stdout, stderr) = await TransmissionRemote.RunAsync(env, node, "-a", magnet);
                Assert.True(added == 0 && stdout.Contains("success", StringComparison.Ordinal), stdout + stderr);
            }
            else
            {
                // The torrent is back after the kill, before anything else is asked of the node.
                var rows = await TransmissionRemote.ListAsync(env, node);
                Assert.True(rows.ContainsKey(1), $"round {round}: the torrent is gone after the restart\n{node.Process.Stderr}");
                Assert.Contains(info.Name, rows[1], StringComparison.Ordinal);
            }

            if (round < Kills)
            {
                await serving.Task.WaitAsync(TimeSpan.FromMinutes(2));
                // The random moment of the kill (not a synchronisation: any moment must be safe).
                await Task.Delay(random.Next(200, 1500));
                node.Process.Kill();
                Assert.True(await node.Process.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            }
            else
            {
                await TransmissionRemote.WaitForListAsync(env, node, r => r.TryGetValue(1, out var row) && row.Contains("100%", StringComparison.Ordinal), TimeSpan.FromMinutes(4));
                Assert.True(await node.TerminateAsync() == 0, $"peerway node did not exit 0 on SIGTERM\n{node.Process.Stderr}");
            }

            lock (gate)
            {
                if (live == 0) idle.TrySetResult();
            }

            await idle.Task.WaitAsync(TimeSpan.FromSeconds(60));
            long[] roundServed;
            lock (gate) roundServed = [.. served];
            var now = KillRestartTests.DurablePieces(file, info);
            for (var p = 0; p < info.PieceCount; p++)
            {
                Assert.False(durable[p] && !now[p], $"round {round}: piece {p} was verified on disk and is gone\n{log}");
                Assert.False(durable[p] && roundServed[p] > 0, $"round {round}: piece {p} was verified on disk before this run and was downloaded again\n{log}");
            }

            durable = now;
            log.AppendLine(CultureInfo.InvariantCulture, $"round {round}: served {roundServed.Sum() / 1024} KiB, verified on disk {durable.Count(d => d)} of {info.PieceCount}");
        }

        output.WriteLine(log.ToString());
        Assert.All(durable, Assert.True);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(file));
    }
}
