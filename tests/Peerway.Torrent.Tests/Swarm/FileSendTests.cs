using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// A plaintext TCP connection sends blocks of a storage on files with sendfile(2) (only their PIECE headers go through
/// the outgoing pipe); the bytes on the wire must be exactly what the pipe path sends: each header followed by its
/// block, in order with the other messages. RC4, storage not on files and a block across a file boundary take the pipe.
/// </summary>
public sealed class FileSendTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-filesend-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Two files (40,000 and 30,000 bytes) in 16 KiB pieces: piece 2 spans the boundary at byte 40,000.</summary>
    private async Task<(TorrentInfo Info, byte[] Content)> TwoFileTorrentAsync()
    {
        var src = Path.Combine(_dir, "src", "set");
        Directory.CreateDirectory(src);
        var a = RandomNumberGenerator.GetBytes(40_000);
        var b = RandomNumberGenerator.GetBytes(30_000);
        await File.WriteAllBytesAsync(Path.Combine(src, "a"), a);
        await File.WriteAllBytesAsync(Path.Combine(src, "b"), b);
        var bytes = await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 16384 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!.Info, [.. a, .. b]);
    }

    [Fact]
    public async Task Plaintext_blocks_from_files_go_by_sendfile_with_exactly_the_requested_bytes_in_order()
    {
        var (info, content) = await TwoFileTorrentAsync();
        var factory = new FileStorageFactory(new FileStorageOptions(), TimeProvider.System);
        using var storage = factory.Open(info, Path.Combine(_dir, "src"), seedOnly: true, CancellationToken.None);
        var (sent, expected, crossing) = await ExchangeAsync(info, content, storage, rc4: false);
        Assert.Equal(expected, sent.Received);
        // Every run inside one file went from its file; the runs across the boundary through the pipe.
        Assert.Equal(sent.Blocks - crossing, sent.FromFiles);
        Assert.True(crossing > 0 && sent.FromFiles > 0);
    }

    [Fact]
    public async Task Storage_not_on_files_and_rc4_connections_send_every_block_through_the_pipe()
    {
        var (info, content) = await TwoFileTorrentAsync();
        using (var memory = new MemoryTorrentStorage(info, content))
        {
            var (sent, expected, _) = await ExchangeAsync(info, content, memory, rc4: false);
            Assert.Equal(expected, sent.Received);
            Assert.Equal(0, sent.FromFiles);
        }

        var factory = new FileStorageFactory(new FileStorageOptions(), TimeProvider.System);
        using var files = factory.Open(info, Path.Combine(_dir, "src"), seedOnly: true, CancellationToken.None);
        var (encrypted, plain, _) = await ExchangeAsync(info, content, files, rc4: true);
        Assert.Equal(plain, encrypted.Received);
        Assert.Equal(0, encrypted.FromFiles);
    }

    private sealed record Sent(byte[] Received, int Blocks, int FromFiles);

    /// <summary>
    /// Over a real TCP connection on 127.0.0.1: rounds of a message, a random run of block requests (some across the file
    /// boundary), another message; then the sender closes. Returns what arrived (decrypted for RC4), what the pipe path
    /// would have sent, and how many blocks were in runs across the boundary.
    /// </summary>
    private static async Task<(Sent Sent, byte[] Expected, int Crossing)> ExchangeAsync(TorrentInfo info, byte[] content, ITorrentStorage storage, bool rc4)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var tcp = new TcpStreamTransport();
        await using var listener = await tcp.ListenAsync(new IPEndPoint(IPAddress.Loopback, 0), timeout.Token);
        var accepting = listener.AcceptAsync(timeout.Token).AsTask();
        var dialled = await tcp.ConnectAsync(listener.LocalEndPoint, timeout.Token);
        var accepted = (await accepting)!;
        await using var receiving = accepted;

        MseResult? mse = null;
        var receive = accepted.Stream;
        if (rc4)
        {
            var key = info.InfoHash.ToArray();
            var answer = MseNegotiator.AcceptAsync(accepted.Stream, [key], EncryptionPolicy.Require, timeout.Token);
            mse = await MseNegotiator.InitiateAsync(dialled.Stream, key, EncryptionPolicy.Require, timeout.Token);
            var answered = await answer;
            Assert.True(mse.Succeeded && answered.Succeeded && mse.Encryptor is not null);
            receive = answered.Wrap(accepted.Stream);
        }

        var conn = new PeerConnection(dialled, outgoing: true, TimeProvider.System, mse);
        conn.StartPump();
        var expected = new List<byte>();
        var random = new Random(9);
        int blocks = 0, crossing = 0;
        for (var round = 0; round < 40; round++)
        {
            // BEP 3: have is <len=0005><id=4><piece index>.
            byte[] have = [0, 0, 0, 5, 4, 0, 0, 0, (byte)round];
            conn.Send(w => w.Write(have));
            expected.AddRange(have);

            var piece = random.Next(info.PieceCount);
            var size = info.PieceSize(piece);
            var begin = random.Next(size);
            var requests = new List<BlockRequest>();
            var crosses = false;
            while (begin < size)
            {
                var length = Math.Min(size - begin, 1 + random.Next(9000));
                requests.Add(new BlockRequest(piece, begin, length));
                var start = ((long)piece * info.PieceLength) + begin;
                var header = new byte[PeerWire.PieceHeaderLength];
                PeerWire.WritePieceHeader(header, piece, begin, length);
                expected.AddRange(header);
                expected.AddRange(content.AsSpan((int)start, length).ToArray());
                if (start < 40_000 && start + length > 40_000) crosses = true;
                begin += length;
            }

            // A round's requests are one run of consecutive bytes (one piece, within the batch budget): it goes from the
            // file only if all of it lies in one file.
            if (crosses) crossing += requests.Count;

            Assert.Equal(requests.Count, conn.SendBlocks(storage, requests));
            blocks += requests.Count;
            var keepAlive = new byte[4];
            conn.Send(w => w.Write(keepAlive));
            expected.AddRange(keepAlive);
        }

        // Every byte the sends queued arrives, then nothing more once the sender closes.
        var received = new byte[expected.Count];
        await receive.ReadExactlyAsync(received, timeout.Token);
        var fromFiles = conn.FileBlocksQueued;
        await conn.DisposeAsync();
        Assert.Equal(0, await receive.ReadAsync(new byte[1], timeout.Token));
        return (new Sent(received, blocks, fromFiles), [.. expected], crossing);
    }
}
