using Peerway.Interop.Tests.Infrastructure;
using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Utp;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// uTP (BEP 29) against libtorrent 2.0.8 with TCP off both ways (`lt-peer.py run --utp-only`), so every byte crosses
/// Peerway's <see cref="UtpTransport"/> on a real UDP socket: the BitTorrent handshake and the whole torrent, each piece
/// checked against its SHA-1 and the file against its SHA-256, in both directions. The BitTorrent side is
/// <see cref="StreamWirePeer"/> (the transport alone); <see cref="UtpSwarmInteropTests"/> runs the whole client.
/// </summary>
public sealed class UtpInteropTests
{
    private const int FileSize = 8 * 1024 * 1024 + 333;

    private static async Task<(string Content, TorrentInfo Info, byte[] Data)> MakeTorrentAsync(LibtorrentPeer lt)
    {
        var src = Path.Combine(lt.Env.Root, "src");
        var content = Path.Combine(src, "payload.bin");
        await TorrentInterop.RandomFileAsync(content, FileSize);
        var torrent = Path.Combine(lt.Env.Root, "payload.torrent");
        await lt.CreateAsync(content, torrent, "--v1-only");
        Assert.True(MetainfoParser.TryParse(await File.ReadAllBytesAsync(torrent), out var metainfo, out var error), error.ToString());
        return (torrent, metainfo!.Info, await File.ReadAllBytesAsync(content));
    }

    private static UtpTransport Transport() =>
        new(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new UtpOptions());

    [RequiresLibtorrentFact]
    public async Task Peerway_downloads_a_whole_torrent_from_libtorrent_over_utp_only()
    {
        await using var lt = new LibtorrentPeer("utp-dl");
        var (torrent, info, data) = await MakeTorrentAsync(lt);
        var port = TorrentInterop.FreePort();
        // libtorrent refuses connections while no torrent is active (still checking): SeedAsync waits until it seeds.
        await lt.SeedAsync(port, "--utp-only", "--torrent", torrent, "--save", Path.Combine(lt.Env.Root, "src"));
        await using var utp = Transport();
        using var cts = new CancellationTokenSource(Deadline);
        await using var connection = await utp.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
        Assert.Equal(StreamTransportKind.Utp, connection.Kind);
        var peer = new StreamWirePeer(connection.Stream, info);
        await peer.HandshakeAsync(cts.Token);
        var downloaded = await peer.DownloadAsync(cts.Token);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(downloaded));
    }

    [RequiresLibtorrentFact]
    public async Task Libtorrent_downloads_a_whole_torrent_from_a_peerway_utp_listener()
    {
        await using var lt = new LibtorrentPeer("utp-up");
        var (torrent, info, data) = await MakeTorrentAsync(lt);
        var log = new ListLogger();
        await using var utp = new UtpTransport(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new UtpOptions(), log);
        await using var listener = await utp.ListenAsync(utp.LocalEndPoint, CancellationToken.None);
        using var cts = new CancellationTokenSource(Deadline);
        var serve = Task.Run(async () =>
        {
            await using var connection = (await listener.AcceptAsync(cts.Token))!;
            var peer = new StreamWirePeer(connection.Stream, info);
            await peer.HandshakeAsync(cts.Token);
            await peer.SeedAsync(data, cts.Token);
        }, cts.Token);
        var dl = Path.Combine(lt.Env.Root, "lt");
        var session = await lt.RunAsync(TorrentInterop.FreePort(), "--utp-only", "--enc", "disabled", "--torrent", torrent, "--save", dl,
            "--peer", "127.0.0.1:" + P(utp.LocalEndPoint.Port), "--exit-when-complete");
        var line = await session.WaitForStdoutAsync(l => l.StartsWith("connect ", StringComparison.Ordinal), Deadline);
        Assert.EndsWith(" uTP", line, StringComparison.Ordinal);
        try
        {
            await CompletedAsync(session);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"{e.Message}\n--- the seed ---\n{serve.Status} {serve.Exception}\nresets {utp.Resets} connections {utp.ConnectionCount}\n{log}", e);
        }
        Assert.Equal(SHA256.HashData(data), TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
        await serve.WaitAsync(Deadline); // libtorrent closed: the seed saw its FIN (or reset) and returned
    }

    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {formatter(state, exception)}");

        public override string ToString() => string.Join("\n", _lines.Take(200));
    }
}
