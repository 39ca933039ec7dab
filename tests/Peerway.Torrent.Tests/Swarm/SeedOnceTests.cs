using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Peerway.Core;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// <see cref="TorrentSessionOptions.SeedEachPieceOnceFirst"/> against a real seeding session over loopback TCP, with two
/// leechers that are raw protocol doubles (our codec), so the test decides exactly which piece each one asks for.
/// </summary>
public sealed class SeedOnceTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-seedonce-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Directory.Delete(_dir, true);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Seeder_gives_each_piece_out_once_before_any_twice(bool seedOnce)
    {
        var src = Path.Combine(_dir, "payload.bin");
        await File.WriteAllBytesAsync(src, RandomNumberGenerator.GetBytes(4 * 32768));
        Assert.True(MetainfoParser.TryParse(await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 32768 }), out var meta, out _));
        var seeder = TestSessions.Create(meta!.InfoHash, meta.Info, src, true,
            new TorrentSessionOptions { ListenAddress = IPAddress.Loopback, SeedEachPieceOnceFirst = seedOnce }, TimeProvider.System);
        _disposables.Add(seeder);
        await seeder.StartAsync(CancellationToken.None);
        var at = new IPEndPoint(IPAddress.Loopback, seeder.ListenPort);
        var a = await RawLeecher.ConnectAsync(at, meta.InfoHash);
        _disposables.Add(a);
        var b = await RawLeecher.ConnectAsync(at, meta.InfoHash);
        _disposables.Add(b);

        Assert.Equal(PeerMessageType.Piece, await a.RequestAsync(0));
        // Piece 0 went to a; pieces 1..3 have gone to nobody yet.
        Assert.Equal(seedOnce ? PeerMessageType.RejectRequest : PeerMessageType.Piece, await b.RequestAsync(0));
        Assert.Equal(PeerMessageType.Piece, await b.RequestAsync(1));
        Assert.Equal(PeerMessageType.Piece, await a.RequestAsync(2));
        Assert.Equal(PeerMessageType.Piece, await a.RequestAsync(3));
        // Every piece has gone out once: now anything is served.
        Assert.Equal(PeerMessageType.Piece, await b.RequestAsync(0));
        Assert.Equal(PeerMessageType.Piece, await a.RequestAsync(1));
    }

    /// <summary>A minimal leecher: handshake (fast extension), interested, then one request at a time.</summary>
    private sealed class RawLeecher : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;

        private RawLeecher(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
        }

        public static async Task<RawLeecher> ConnectAsync(IPEndPoint seeder, NodeId infoHash)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(seeder);
            var leecher = new RawLeecher(socket);
            var hs = new byte[PeerWire.HandshakeLength];
            PeerWire.WriteHandshake(hs, new PeerHandshake(PeerHandshake.FastBit, infoHash, NodeId.Random()));
            await leecher._stream.WriteAsync(hs);
            await leecher._stream.ReadExactlyAsync(hs).AsTask().WaitAsync(Deadline);
            var w = new ArrayBufferWriter<byte>();
            PeerWire.WriteSimple(w, PeerMessageType.Interested);
            await leecher._stream.WriteAsync(w.WrittenMemory);
            // The seeder fills a free upload slot as soon as a peer is interested.
            while (await leecher.NextAsync() is not (PeerMessageType.Unchoke, _))
            {
            }

            return leecher;
        }

        /// <summary>Asks for the first block of <paramref name="piece"/>; returns Piece or RejectRequest.</summary>
        public async Task<PeerMessageType> RequestAsync(int piece)
        {
            var w = new ArrayBufferWriter<byte>();
            PeerWire.WriteBlockMessage(w, PeerMessageType.Request, piece, 0, TorrentLimits.BlockLength);
            await _stream.WriteAsync(w.WrittenMemory);
            while (true)
            {
                var (type, index) = await NextAsync();
                if (type is PeerMessageType.Piece or PeerMessageType.RejectRequest && index == piece) return type;
            }
        }

        private async Task<(PeerMessageType Type, int Index)> NextAsync()
        {
            var prefix = new byte[4];
            await _stream.ReadExactlyAsync(prefix).AsTask().WaitAsync(Deadline);
            var length = BinaryPrimitives.ReadInt32BigEndian(prefix);
            var frame = new byte[4 + length];
            prefix.CopyTo(frame, 0);
            await _stream.ReadExactlyAsync(frame.AsMemory(4)).AsTask().WaitAsync(Deadline);
            Assert.True(PeerWire.TryDecode(frame, out var m, out var error), error.ToString());
            return (m.Type, m.Index);
        }

        public async ValueTask DisposeAsync()
        {
            await _stream.DisposeAsync();
            _socket.Dispose();
        }
    }
}
