using System.Globalization;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Two Peerway processes whose only way to each other is WebRTC signalled through `peerway tracker`'s WebSocket
/// endpoint (WebTorrent's protocol): a magnet with a ws:// tracker alone, so the info dictionary (ut_metadata) and every
/// piece cross a data channel. The SHA-256 of what arrived is checked.
/// </summary>
public sealed class WebRtcSwarmInteropTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Peerway_get_downloads_a_magnet_from_peerway_share_over_webrtc()
    {
        await using var env = new TorrentInterop("webrtc-swarm");
        var port = TorrentInterop.FreePort().ToString(CultureInfo.InvariantCulture);
        await env.StartPeerway("tracker", "--port", port, "--bind", "127.0.0.1").FirstLineAsync(Deadline);
        var tracker = $"ws://127.0.0.1:{port}";
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, 2 * 1024 * 1024 + 5);
        var magnet = await env.StartPeerway("share", source, "--bind", "127.0.0.1", "--tracker", tracker).FirstLineAsync(Deadline);
        Assert.Contains("tr=ws%3A%2F%2F127.0.0.1", magnet);

        var dl = Path.Combine(env.Root, "dl");
        var get = env.StartPeerway("get", magnet, "-o", dl, "--bind", "127.0.0.1", "--timeout", "100", "-v");
        Assert.True(await get.WaitForExitAsync(Deadline), "peerway get did not finish");
        Assert.True(get.ExitCode == 0, get.Stderr);
        Assert.Contains("WebRTC peer", get.Stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }
}
