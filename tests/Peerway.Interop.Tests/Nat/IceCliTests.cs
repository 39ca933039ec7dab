using System.Globalization;
using System.Text;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Nat;

/// <summary>`peerway signal` and two `peerway connect` processes on loopback: ICE over real UDP sockets.</summary>
public sealed class IceCliTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Two_connects_meet_through_the_signaling_server_and_exchange_messages()
    {
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        await using var signal = PeerwayCli.Start("signal", "--port", port);
        await signal.WaitForStdoutAsync(l => l.StartsWith("signal: listening", StringComparison.Ordinal), Timeout);
        var url = $"http://127.0.0.1:{port}/";
        await using var alice = PeerwayCli.Start("connect", "--signal", url, "--id", "alice", "--peer", "bob");
        await using var bob = PeerwayCli.Start("connect", "--signal", url, "--id", "bob", "--peer", "alice");
        var a = await alice.WaitForExitAsync(Timeout);
        var b = await bob.WaitForExitAsync(Timeout);
        Assert.True(a == 0 && b == 0, $"alice {a}: {alice.Stdout}\n{alice.Stderr}\nbob {b}: {bob.Stdout}\n{bob.Stderr}\nsignal: {signal.Stderr}");
        Assert.Contains(alice.StdoutLines, l => l.StartsWith("connected: host", StringComparison.Ordinal));
        Assert.Contains("received: hello from bob", alice.StdoutLines);
        Assert.Contains("received: hello from alice", bob.StdoutLines);
    }

    /// <summary>
    /// `peerway connect --datachannel` on both sides: DTLS (roles by ICE role, fingerprints over the signaling), SCTP
    /// and DCEP over the selected path; each side's 1 MiB comes back intact. `--count` without `--datachannel` is a
    /// usage error.
    /// </summary>
    [Fact]
    public async Task Two_connects_run_a_data_channel_over_their_path_and_echo_each_others_MiB()
    {
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        await using var signal = PeerwayCli.Start("signal", "--port", port);
        await signal.WaitForStdoutAsync(l => l.StartsWith("signal: listening", StringComparison.Ordinal), Timeout);
        var url = $"http://127.0.0.1:{port}/";
        string[] channel = ["--datachannel", "--count", "64", "--size", "16384"];
        await using var alice = PeerwayCli.Start(["connect", "--signal", url, "--id", "alice", "--peer", "bob", .. channel]);
        await using var bob = PeerwayCli.Start(["connect", "--signal", url, "--id", "bob", "--peer", "alice", .. channel]);
        var a = await alice.WaitForExitAsync(Timeout);
        var b = await bob.WaitForExitAsync(Timeout);
        Assert.True(a == 0 && b == 0, $"alice {a}: {alice.Stdout}\n{alice.Stderr}\nbob {b}: {bob.Stdout}\n{bob.Stderr}");
        foreach (var p in new[] { alice, bob })
        {
            Assert.Contains(p.StdoutLines, l => l.StartsWith("connected: host", StringComparison.Ordinal));
            Assert.Contains(p.StdoutLines, l => l.StartsWith("echoed 64 of 64 messages (1048576 bytes) in ", StringComparison.Ordinal));
            Assert.DoesNotContain(p.StdoutLines, l => l.StartsWith("received: hello", StringComparison.Ordinal));
        }

        var usage = await PeerwayCli.RunAsync("connect", "--signal", url, "--id", "x", "--peer", "y", "--count", "3");
        Assert.Equal(2, usage.ExitCode);
    }

    /// <summary>
    /// A long poll that times out empty (after 10 s) must leave the kept-alive connection usable: the NAT lab found the
    /// server framing that empty answer with two chunked terminators, so the next response on the connection failed
    /// with "invalid status line '0'" and the lines drained for it were lost.
    /// </summary>
    [Fact]
    public async Task Signal_answers_an_empty_long_poll_without_breaking_the_kept_alive_connection()
    {
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        await using var signal = PeerwayCli.Start("signal", "--port", port);
        await signal.WaitForStdoutAsync(l => l.StartsWith("signal: listening", StringComparison.Ordinal), Timeout);
        // Raw HTTP/1.1 on one connection: HttpClient would hide the fault when the stray bytes arrive early enough.
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(System.Net.IPAddress.Loopback, int.Parse(port, CultureInfo.InvariantCulture));
        var stream = tcp.GetStream();
        using var cts = new CancellationTokenSource(Timeout);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /recv?id=empty HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"), cts.Token);
        var (status, body) = await ReadResponseAsync(stream, cts.Token);
        Assert.Equal(("HTTP/1.1 200 OK", ""), (status, body));
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /send?to=empty HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 19\r\n\r\na=end-of-candidates"), cts.Token);
        (status, _) = await ReadResponseAsync(stream, cts.Token);
        Assert.Equal("HTTP/1.1 204 No Content", status);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /recv?id=empty HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"), cts.Token);
        (status, body) = await ReadResponseAsync(stream, cts.Token);
        Assert.Equal(("HTTP/1.1 200 OK", "a=end-of-candidates"), (status, body));
    }

    /// <summary>Reads one HTTP/1.1 response (Content-Length or chunked) byte by byte: nothing past it is consumed.</summary>
    private static async Task<(string Status, string Body)> ReadResponseAsync(Stream stream, CancellationToken ct)
    {
        async Task<string> LineAsync()
        {
            var line = new StringBuilder();
            var one = new byte[1];
            while (true)
            {
                if (await stream.ReadAsync(one, ct) == 0) throw new EndOfStreamException($"connection closed after '{line}'");
                if (one[0] == '\n') return line.ToString().TrimEnd('\r');
                line.Append((char)one[0]);
            }
        }

        async Task<string> BytesAsync(int n)
        {
            var buffer = new byte[n];
            await stream.ReadExactlyAsync(buffer, ct);
            return Encoding.UTF8.GetString(buffer);
        }

        var status = await LineAsync();
        int? length = null;
        var chunked = false;
        for (var h = await LineAsync(); h.Length > 0; h = await LineAsync())
        {
            if (h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = int.Parse(h[15..].Trim(), CultureInfo.InvariantCulture);
            if (h.Equals("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)) chunked = true;
        }

        if (!chunked) return (status, await BytesAsync(length ?? 0));
        var body = new StringBuilder();
        for (var size = Convert.ToInt32(await LineAsync(), 16); size > 0; size = Convert.ToInt32(await LineAsync(), 16))
        {
            body.Append(await BytesAsync(size));
            await LineAsync();
        }

        await LineAsync();
        return (status, body.ToString());
    }

    [Fact]
    public async Task Connect_rejects_a_non_http_signal_url()
    {
        var result = await PeerwayCli.RunAsync("connect", "--signal", "ftp://x/", "--id", "a", "--peer", "b");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--signal", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_rejects_a_wildcard_bind_address()
    {
        var result = await PeerwayCli.RunAsync("connect", "--signal", "http://127.0.0.1:1/", "--id", "a", "--peer", "b", "--bind", "0.0.0.0");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--bind", result.Stderr, StringComparison.Ordinal);
    }
}
