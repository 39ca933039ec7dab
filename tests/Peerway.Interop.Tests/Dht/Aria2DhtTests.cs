using System.Text.RegularExpressions;
using Peerway.Core;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>
/// Issue 2 §11(c): aria2c, given our node as its only DHT entry point and a magnet link (so it runs DHT lookups),
/// bootstraps from `peerway dht serve`: our routing table gains aria2's DHT node (reported by serve -v on stderr).
/// </summary>
public sealed class Aria2DhtTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-aria2");

    public void Dispose() => _temp.Dispose();

    [RequiresToolFact("aria2c")]
    public async Task Aria2c_bootstraps_from_peerway_and_enters_its_routing_table()
    {
        var aria2 = RequiredTool.Require("aria2c", "apt-get install aria2");
        await using var ours = await ServedNode.StartAsync("-v");
        var dhtPort = FreePort.Udp();
        var btPort = FreePort.TcpAndUdp();
        var magnet = $"magnet:?xt=urn:btih:{NodeId.Random()}&dn=peerway-interop";

        await using var client = ExternalProcess.Start(
            aria2,
            [
                "--enable-dht=true", $"--dht-entry-point=127.0.0.1:{ours.Port}", $"--dht-listen-port={dhtPort}",
                $"--dht-file-path={Path.Combine(_temp.Path, "dht.dat")}", "--enable-dht6=false", $"--listen-port={btPort}",
                "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--bt-tracker=", "--seed-time=0",
                "--bt-stop-timeout=120", "--no-conf=true", "--console-log-level=warn", "--summary-interval=0",
                $"--dir={_temp.Path}", magnet,
            ],
            TimeSpan.FromMinutes(3),
            _temp.Path);

        var pattern = new Regex($@"^node added [0-9a-f]{{40}} 127\.0\.0\.1:{dhtPort}$");
        var added = await ours.Process.WaitForStderrAsync(pattern.IsMatch, TimeSpan.FromSeconds(90));

        Assert.Matches(pattern, added);
        Assert.False(client.HasExited, $"aria2c exited early:\n{client.Stdout}\n{client.Stderr}");
        Assert.Equal(0, await ours.StopAsync());
        // -v logs go to stderr only: stdout still holds just the contract's first line.
        Assert.Single(ours.Process.StdoutLines);
    }
}
