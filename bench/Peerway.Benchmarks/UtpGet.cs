using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Utp;
using Peerway.Torrent.Wire;

namespace Peerway.Benchmarks;

/// <summary>
/// `utp-get IP:PORT TORRENT OUT`: downloads a single-file torrent from one seed over uTP (plaintext BEP 3, 64 requests
/// in flight) into OUT and prints the seconds it took from connect to the last block (bench/torrent/utp.sh compares
/// it with libtorrent downloading the same torrent from the same seed over uTP).
/// </summary>
internal static class UtpGet
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seed = IPEndPoint.Parse(args[0]);
        if (!MetainfoParser.TryParse(await File.ReadAllBytesAsync(args[1]), out var metainfo, out var error))
        {
            await Console.Error.WriteLineAsync($"bad torrent: {error}");
            return 2;
        }

        var info = metainfo!.Info;
        await using var utp = new UtpTransport(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new UtpOptions());
        var clock = Stopwatch.StartNew();
        await using var connection = await utp.ConnectAsync(seed, CancellationToken.None);
        var stream = connection.Stream;
        var hello = new byte[PeerWire.HandshakeLength];
        PeerWire.WriteHandshake(hello, new PeerHandshake(0, info.InfoHash, new NodeId("-PW0001-utp-benchmrk"u8)));
        await stream.WriteAsync(hello);
        await stream.ReadExactlyAsync(hello);
        var writer = new ArrayBufferWriter<byte>();
        PeerWire.WriteSimple(writer, PeerMessageType.Interested);
        await stream.WriteAsync(writer.WrittenMemory);
        var content = new byte[info.TotalLength];
        var blocks = Enumerable.Range(0, info.PieceCount)
            .SelectMany(p => Enumerable.Range(0, (info.PieceSize(p) + TorrentLimits.BlockLength - 1) / TorrentLimits.BlockLength)
                .Select(b => (Piece: p, Begin: b * TorrentLimits.BlockLength, Length: Math.Min(TorrentLimits.BlockLength, info.PieceSize(p) - (b * TorrentLimits.BlockLength)))))
            .ToList();
        var frame = new byte[PeerWire.MaxMessageLength + 4];
        int next = 0, received = 0;
        var unchoked = false;
        while (received < blocks.Count)
        {
            writer.ResetWrittenCount();
            while (unchoked && next < blocks.Count && next - received < 64)
            {
                var (p, b, l) = blocks[next++];
                PeerWire.WriteBlockMessage(writer, PeerMessageType.Request, p, b, l);
            }

            if (writer.WrittenCount > 0) await stream.WriteAsync(writer.WrittenMemory);
            await stream.ReadExactlyAsync(frame.AsMemory(0, 4));
            var length = BinaryPrimitives.ReadInt32BigEndian(frame);
            if (length is < 0 or > PeerWire.MaxMessageLength) return 1;
            await stream.ReadExactlyAsync(frame.AsMemory(4, length));
            if (!PeerWire.TryDecode(frame.AsSpan(0, length + 4), out var message, out _)) return 1;
            if (message.Type == PeerMessageType.Unchoke) unchoked = true;
            else if (message.Type == PeerMessageType.Piece)
            {
                message.Payload.CopyTo(content.AsSpan((int)(((long)message.Index * info.PieceLength) + message.Begin)));
                received++;
            }
        }

        var seconds = clock.Elapsed.TotalSeconds;
        await File.WriteAllBytesAsync(args[2], content);
        Console.WriteLine(seconds.ToString("F3", CultureInfo.InvariantCulture));
        return 0;
    }
}
