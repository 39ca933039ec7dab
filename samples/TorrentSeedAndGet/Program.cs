// Seeds a folder and downloads it over BitTorrent on loopback: a .torrent is made from a folder of two files, a seeding
// TorrentClient serves it, a downloading one is given the seeder's address and writes a verified copy.
using System.Net;
using Peerway.Net;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
var work = Directory.CreateTempSubdirectory("peerway-sample-");
try
{
    var folder = Directory.CreateDirectory(Path.Combine(work.FullName, "album"));
    var random = new Random(7);
    foreach (var (name, size) in new[] { ("one.bin", 3_000_000), ("two.bin", 1_234_567) })
    {
        var bytes = new byte[size];
        random.NextBytes(bytes);
        await File.WriteAllBytesAsync(Path.Combine(folder.FullName, name), bytes, cancel.Token);
    }

    var torrent = await TorrentCreator.CreateAsync(folder.FullName, new TorrentCreateOptions(), ct: cancel.Token);
    if (!MetainfoParser.TryParse(torrent, out var meta, out var error)) throw new InvalidOperationException($"torrent: {error}");
    Console.WriteLine($"torrent {meta!.Info.InfoHash}: {meta.Info.Name}, {meta.Info.TotalLength} bytes in {meta.Info.Files.Count} files");

    // One TorrentClient per process is the usual shape; two here (seeder and leecher) keep the sample in one program.
    var options = new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)] };
    var storage = new FileStorageFactory(new FileStorageOptions(), TimeProvider.System);
    await using var seeder = new TorrentClient([new TcpStreamTransport()], options, storage, TimeProvider.System);
    await seeder.StartAsync(cancel.Token);
    await seeder.AddAsync(meta.Info, work.FullName, new TorrentAddOptions { SeedOnly = true }, cancel.Token);
    Console.WriteLine($"seeding on 127.0.0.1:{seeder.Port}");

    var downloads = Directory.CreateDirectory(Path.Combine(work.FullName, "downloads"));
    await using var leecher = new TorrentClient([new TcpStreamTransport()], options, storage, TimeProvider.System);
    await leecher.StartAsync(cancel.Token);
    var download = await leecher.AddAsync(meta.Info, downloads.FullName,
        new TorrentAddOptions { Peers = [new IPEndPoint(IPAddress.Loopback, seeder.Port)] }, cancel.Token);
    await download.Completed.WaitAsync(cancel.Token);

    var same = Directory.GetFiles(folder.FullName).All(f =>
        File.ReadAllBytes(f).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(downloads.FullName, "album", Path.GetFileName(f)))));
    Console.WriteLine(same ? "downloaded album: every file identical" : "downloaded album differs");
    return same ? 0 : 1;
}
finally
{
    work.Delete(recursive: true);
}
