using System.Net;
using System.Security.Cryptography;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>Whole sessions over real loopback TCP, in a temporary folder; every session is disposed after the test.</summary>
public abstract class LoopbackSwarmTests(string folderPrefix) : IAsyncLifetime
{
    private readonly List<TorrentSession> _sessions = [];

    protected static TimeSpan Deadline { get; } = TimeSpan.FromSeconds(60);

    protected string Dir { get; } = Directory.CreateTempSubdirectory(folderPrefix).FullName;

    protected static TorrentSessionOptions Loopback => new() { ListenAddress = IPAddress.Loopback };

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _sessions) await s.DisposeAsync();
        Directory.Delete(Dir, true);
    }

    internal async Task<(TorrentMetainfo Meta, string Source, byte[] Content)> MakeContentAsync(int size, int pieceLength = 32 * 1024)
    {
        var src = Path.Combine(Dir, "seed", "payload.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(src)!);
        var content = RandomNumberGenerator.GetBytes(size);
        await File.WriteAllBytesAsync(src, content);
        var bytes = await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = pieceLength });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!, src, content);
    }

    protected async Task<TorrentSession> StartAsync(TorrentMetainfo meta, TorrentInfo? info, string dir, bool source, TorrentSessionOptions? options = null)
    {
        var s = TestSessions.Create(meta.InfoHash, info, dir, source, options ?? Loopback, TimeProvider.System);
        _sessions.Add(s);
        await s.StartAsync(CancellationToken.None);
        return s;
    }
}
