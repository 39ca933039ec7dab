using System.Net;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Node;

/// <summary>
/// Issue 18 item 7 through <c>./peerway</c>: <c>demo --keep</c> prints its node's dashboard URL first, the dashboard answers
/// while the swarm runs and after the summary, and SIGINT stops the kept node with exit 0.
/// </summary>
public sealed class DemoNodeInteropTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Demo_keep_serves_the_dashboard_after_the_summary_until_interrupted()
    {
        await using var demo = PeerwayCli.Start(TimeSpan.FromMinutes(10), "demo", "--peers", "2", "--size-mib", "2", "--seed", "3", "--keep");
        var first = await demo.WaitForStdoutAsync(_ => true, Timeout);
        Assert.StartsWith("dashboard: http://127.0.0.1:", first, StringComparison.Ordinal);
        var url = first.Split(' ')[1];
        using var http = new HttpClient();
        using (var page = await http.GetAsync(url))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains("<title>Peerway node</title>", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await demo.WaitForStdoutAsync(l => l.StartsWith("node: still running", StringComparison.Ordinal), Timeout);
        Assert.Contains("node: peerway-demo.bin 100% through the Transmission RPC, SHA-256 matches the source", demo.StdoutLines);
        Assert.False(demo.HasExited, demo.Stdout + demo.Stderr);

        // The kept node still serves the dashboard, and its event stream shows the demo torrent done.
        using (var events = await http.GetAsync(url + "dashboard/events", HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await events.Content.ReadAsStreamAsync());
            var line = await reader.ReadLineAsync();
            Assert.NotNull(line);
            Assert.Contains("\"name\":\"peerway-demo.bin\"", line, StringComparison.Ordinal);
            Assert.Contains("\"done\":1", line, StringComparison.Ordinal);
        }

        await demo.SignalAsync("INT");
        Assert.Equal(0, await demo.WaitForExitAsync(TimeSpan.FromMinutes(1)));
    }
}
