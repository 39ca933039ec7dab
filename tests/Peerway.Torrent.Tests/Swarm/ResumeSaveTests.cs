using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// The periodic resume save runs beside the swarm's tick, one at a time: its fsyncs take up to hundreds of milliseconds
/// on a file being written (docs/BENCHMARKS.md, issue 14 item 9, sixth round), and the tick of every torrent of the
/// client (one <see cref="SwarmTicker"/>) must not wait for them.
/// </summary>
public sealed class ResumeSaveTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
    }

    [Fact]
    public async Task A_resume_save_in_progress_holds_up_neither_the_tick_nor_starts_a_second_save()
    {
        var content = RandomNumberGenerator.GetBytes(4 * 1024 * 1024);
        var meta = SimulatedSwarm.MakeTorrent(content, 32 * 1024);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(meta.Info, content);
        // A slow seeder: the download is still going on when the test ends.
        var seeder = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions
        {
            ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)],
            Encryption = EncryptionPolicy.Off,
            UploadRateLimit = 32 * 1024,
        }, seedStore, TimeProvider.System);
        _disposables.Add(seeder);
        await seeder.StartAsync(CancellationToken.None);
        await seeder.AddAsync(meta, "seed", new TorrentAddOptions { SeedOnly = true });

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var storage = new BlockingResumeStorageFactory();
        var leecher = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [], Encryption = EncryptionPolicy.Off },
            storage, time);
        _disposables.Add(leecher);
        try
        {
            await leecher.StartAsync(CancellationToken.None);
            await leecher.AddAsync(meta, "dl", new TorrentAddOptions { Peers = [new IPEndPoint(IPAddress.Loopback, seeder.Port)] });

            // Five resume intervals of ticks (FakeTimeProvider runs each due timer inside Advance, on the advancing
            // thread): the torrent has a peer to dial or talk to, so each tick is a full one; the first interval's
            // save starts and blocks, and the ticks after it must still run.
            var ticks = Task.Run(() =>
            {
                for (var i = 0; i < 50; i++) time.Advance(TimeSpan.FromMilliseconds(100));
            });
            await storage.SaveEntered.Task.WaitAsync(Deadline);
            await ticks.WaitAsync(Deadline);
            Assert.Equal(1, storage.Saves);
        }
        finally
        {
            storage.Release.Set();
        }

        await leecher.DisposeAsync();
        Assert.True(storage.Saves >= 2, "the shutdown's save did not run after the blocked one");
    }

    /// <summary>Memory storage whose <see cref="ITorrentStorage.SaveResume"/> waits for <see cref="Release"/>.</summary>
    private sealed class BlockingResumeStorageFactory : ITorrentStorageFactory
    {
        private readonly MemoryStorageFactory _inner = new();
        private int _saves;

        public TaskCompletionSource SaveEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ManualResetEventSlim Release { get; } = new();

        public int Saves => Volatile.Read(ref _saves);

        public ITorrentStorage Open(TorrentInfo info, string savePath, bool seedOnly, CancellationToken ct) =>
            new Storage(this, _inner.Open(info, savePath, seedOnly, ct));

        public ITorrentStorage Open(TorrentInfo info, string savePath, bool seedOnly, IReadOnlyList<bool>? skippedFiles, CancellationToken ct) =>
            Open(info, savePath, seedOnly, ct);

        private sealed class Storage(BlockingResumeStorageFactory owner, ITorrentStorage inner) : ITorrentStorage
        {
            public Bitfield Verified => inner.Verified;

            public int VerifiedCount => inner.VerifiedCount;

            public bool IsComplete => inner.IsComplete;

            public int PiecesKeptOnOpen => inner.PiecesKeptOnOpen;

            public int PiecesRechecked => inner.PiecesRechecked;

            public bool HasPiece(int piece) => inner.HasPiece(piece);

            public void Read(int piece, int begin, Span<byte> destination) => inner.Read(piece, begin, destination);

            public bool TryWriteVerifiedPiece(int piece, ReadOnlySpan<byte> data) => inner.TryWriteVerifiedPiece(piece, data);

            public void SaveResume()
            {
                Interlocked.Increment(ref owner._saves);
                owner.SaveEntered.TrySetResult();
                if (!owner.Release.Wait(Deadline)) throw new IOException("the test never released the resume save");
                inner.SaveResume();
            }

            public void Dispose() => inner.Dispose();
        }
    }
}
