using System.Diagnostics;
using System.Globalization;
using System.Net;
using Peerway.Net;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Benchmarks;

/// <summary>
/// `idle-torrents [--torrents N] [--seconds S]`: one <see cref="TorrentClient"/> (TCP on 127.0.0.1, real files, the
/// system clock) seeding N small torrents (a 256 KiB file each) that no peer ever connects to; after they are all
/// seeding and a full GC, it idles S seconds and reports what holding them costs: process CPU % over the idle window,
/// RSS, managed heap, bytes allocated and GCs while idle (bench/torrent/idle-torrents.sh runs it with 0 and 100 torrents).
/// </summary>
internal static class IdleTorrents
{
    public static async Task<int> RunAsync(string[] args)
    {
        var torrents = 100;
        var seconds = 60;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--torrents": torrents = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--seconds": seconds = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default:
                    await Console.Error.WriteLineAsync($"idle-torrents: unknown option {args[i]}");
                    return 2;
            }
        }

        var dir = Directory.CreateTempSubdirectory("pw-idle-torrents-");
        try
        {
            var infos = new List<TorrentMetainfo>();
            var random = new Random(14);
            var content = new byte[256 * 1024];
            for (var i = 0; i < torrents; i++)
            {
                var path = Path.Combine(dir.FullName, string.Create(CultureInfo.InvariantCulture, $"file{i:D3}.bin"));
                random.NextBytes(content);
                await File.WriteAllBytesAsync(path, content);
                var bytes = await TorrentCreator.CreateAsync(path, new TorrentCreateOptions());
                if (!MetainfoParser.TryParse(bytes, out var metainfo, out var error)) throw new InvalidDataException(error.ToString());
                infos.Add(metainfo!);
            }

            await using var client = new TorrentClient([new TcpStreamTransport()],
                new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)] },
                new FileStorageFactory(new FileStorageOptions(), TimeProvider.System), TimeProvider.System);
            await client.StartAsync(CancellationToken.None);
            var handles = new List<TorrentHandle>();
            foreach (var metainfo in infos) handles.Add(await client.AddAsync(metainfo, dir.FullName, new TorrentAddOptions { SeedOnly = true }));
            await Task.WhenAll(handles.Select(h => h.Completed));

            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            using var process = Process.GetCurrentProcess();
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var allocated0 = GC.GetTotalAllocatedBytes(precise: true);
            var gcs0 = GC.CollectionCount(0);
            var clock = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            var wall = clock.Elapsed;
            process.Refresh();
            var cpu = process.TotalProcessorTime - cpu0;
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated0;
            var gcs = GC.CollectionCount(0) - gcs0;
            var seeding = handles.Count(h => h.State == TorrentState.Seeding);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"torrents {torrents} (seeding {seeding}), idle {wall.TotalSeconds:F1} s: CPU {cpu.TotalMilliseconds / wall.TotalMilliseconds * 100:F2} % ({cpu.TotalMilliseconds:F0} ms), " +
                $"RSS {process.WorkingSet64 / 1048576.0:F1} MiB, managed heap {GC.GetTotalMemory(false) / 1048576.0:F1} MiB, " +
                $"allocated while idle {allocated / 1024.0:F0} KiB, gen0 GCs {gcs}, threads {process.Threads.Count}"));
            return 0;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
