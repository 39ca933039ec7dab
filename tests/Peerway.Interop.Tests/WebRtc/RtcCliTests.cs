using System.Globalization;
using System.Net;
using System.Text;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.WebRtc;

/// <summary>The `peerway rtc` contract that scripts and third-party harnesses rely on, over real processes.</summary>
public sealed class RtcCliTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    /// <summary>Starts `peerway rtc listen --echo` on a free loopback port; returns it and its POST URL.</summary>
    internal static async Task<(ExternalProcess Listener, string Url)> StartListenerAsync()
    {
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        var listener = PeerwayCli.Start("rtc", "listen", "--http", "127.0.0.1:" + port, "--echo");
        var first = await listener.WaitForStdoutAsync(_ => true, Timeout);
        Assert.Equal($"rtc: listening on http://127.0.0.1:{port}/rtc", first);
        return (listener, $"http://127.0.0.1:{port}/rtc");
    }

    [Fact]
    public async Task Rtc_connect_gets_every_message_echoed_by_rtc_listen()
    {
        var (listener, url) = await StartListenerAsync();
        await using var _ = listener;
        var result = await PeerwayCli.RunAsync("rtc", "connect", url, "--label", "bulk", "--count", "64", "--size", "16384");
        Assert.True(result.ExitCode == 0, result + "\nlistener: " + listener.Stdout + "\n" + listener.Stderr);
        Assert.Contains(result.StdoutLines, l => l.StartsWith("echoed 64 of 64 messages (1048576 bytes) in ", StringComparison.Ordinal) && l.Contains(" MB/s; setup ", StringComparison.Ordinal));
        await listener.WaitForStdoutAsync(l => l.StartsWith("channel open bulk id ", StringComparison.Ordinal) && l.EndsWith(" ordered", StringComparison.Ordinal), Timeout);
        await listener.WaitForStdoutAsync(l => l == "channel closed bulk", Timeout);

        // An unordered channel is reported as such.
        var unordered = await PeerwayCli.RunAsync("rtc", "connect", url, "--label", "u", "--count", "5", "--size", "100", "--unordered");
        Assert.True(unordered.ExitCode == 0, unordered.ToString());
        await listener.WaitForStdoutAsync(l => l.StartsWith("channel open u id ", StringComparison.Ordinal) && l.EndsWith(" unordered", StringComparison.Ordinal), Timeout);
    }

    [Fact]
    public async Task A_malformed_offer_gets_400_with_a_reason_and_the_listener_keeps_serving()
    {
        var (listener, url) = await StartListenerAsync();
        await using var _ = listener;
        using var http = new HttpClient();

        // CORS preflight from another origin, as a browser page sends before its POST.
        using var preflight = new HttpRequestMessage(HttpMethod.Options, url);
        preflight.Headers.Add("Origin", "http://example.invalid");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type");
        using var pre = await http.SendAsync(preflight);
        Assert.Equal(HttpStatusCode.NoContent, pre.StatusCode);
        Assert.Equal("*", pre.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("POST", pre.Headers.GetValues("Access-Control-Allow-Methods").Single(), StringComparison.Ordinal);

        using var bad = await http.PostAsync(url, new StringContent("v=0\r\nm=audio 9 RTP/AVP 0\r\n", Encoding.UTF8, "application/sdp"));
        var reason = await bad.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("*", bad.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Single(reason.TrimEnd('\n').Split('\n'));
        Assert.Contains("webrtc-datachannel", reason, StringComparison.Ordinal);

        // Still serving: a real offer after the bad one connects and echoes.
        var result = await PeerwayCli.RunAsync("rtc", "connect", url, "--count", "3", "--size", "10");
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    /// <summary>
    /// The per-process bound: with `--max-connections 1`, a second offer while the first connection is alive gets 503,
    /// and the first connection keeps echoing.
    /// </summary>
    [Fact]
    public async Task Rtc_listen_refuses_offers_beyond_max_connections_and_the_first_keeps_working()
    {
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        await using var listener = PeerwayCli.Start("rtc", "listen", "--http", "127.0.0.1:" + port, "--echo", "--max-connections", "1");
        Assert.Equal($"rtc: listening on http://127.0.0.1:{port}/rtc", await listener.WaitForStdoutAsync(_ => true, Timeout));
        var url = $"http://127.0.0.1:{port}/rtc";
        using var http = new HttpClient();

        await using var first = new Peerway.WebRtc.RtcPeerConnection(new Peerway.Net.UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new Peerway.WebRtc.RtcConfiguration());
        using var answer = await http.PostAsync(url, new StringContent(await first.CreateOfferAsync(), Encoding.UTF8, "application/sdp"));
        Assert.Equal(HttpStatusCode.Created, answer.StatusCode);
        first.SetAnswer(await answer.Content.ReadAsStringAsync());
        await first.Connected.WaitAsync(Timeout);

        await using var second = new Peerway.WebRtc.RtcPeerConnection(new Peerway.Net.UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new Peerway.WebRtc.RtcConfiguration());
        using var refused = await http.PostAsync(url, new StringContent(await second.CreateOfferAsync(), Encoding.UTF8, "application/sdp"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);

        var channel = await first.CreateDataChannelAsync("still");
        await channel.SendAsync("echo me");
        var back = await channel.ReceiveAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal("echo me", back!.Value.Text);
        Assert.True(back.Value.IsText);
    }

    /// <summary>
    /// A peer that takes smaller messages than it sends (werift: a=max-message-size 65536, sends more): `rtc listen
    /// --echo` cannot send a 200 kB message back, skips that one (logged) and keeps echoing the channel.
    /// </summary>
    [Fact]
    public async Task Rtc_listen_echo_skips_a_message_it_cannot_send_back_and_keeps_echoing()
    {
        var (listener, url) = await StartListenerAsync();
        await using var _ = listener;
        using var http = new HttpClient();
        await using var pc = new Peerway.WebRtc.RtcPeerConnection(new Peerway.Net.UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new Peerway.WebRtc.RtcConfiguration());
        var offer = (await pc.CreateOfferAsync()).Replace("a=max-message-size:262144", "a=max-message-size:65536", StringComparison.Ordinal);
        Assert.Contains("a=max-message-size:65536", offer, StringComparison.Ordinal);
        using var answer = await http.PostAsync(url, new StringContent(offer, Encoding.UTF8, "application/sdp"));
        Assert.Equal(HttpStatusCode.Created, answer.StatusCode);
        pc.SetAnswer(await answer.Content.ReadAsStringAsync());
        await pc.Connected.WaitAsync(Timeout);

        var channel = await pc.CreateDataChannelAsync("skip");
        await channel.SendAsync(new byte[200_000]);
        await channel.SendAsync("after the big one");
        var back = await channel.ReceiveAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal("after the big one", back!.Value.Text);
    }

    [Fact]
    public async Task Rtc_connect_to_nothing_fails_with_one_line_and_exit_1_and_a_bad_option_exits_2()
    {
        // The launcher rebuilds first when sources changed and says so on stderr ("rebuilding peerway…"): build before
        // the runs whose stderr is counted, so that only the command's own line is there.
        var build = await PeerwayCli.RunAsync("--version");
        Assert.True(build.ExitCode == 0, build.ToString());
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        var result = await PeerwayCli.RunAsync("rtc", "connect", $"http://127.0.0.1:{port}/rtc");
        Assert.Equal(1, result.ExitCode);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        var usage = await PeerwayCli.RunAsync("rtc", "connect", $"http://127.0.0.1:{port}/rtc", "--size", "0");
        Assert.Equal(2, usage.ExitCode);
        var listenUsage = await PeerwayCli.RunAsync("rtc", "listen", "--http", "nowhere");
        Assert.Equal(2, listenUsage.ExitCode);
    }
}
