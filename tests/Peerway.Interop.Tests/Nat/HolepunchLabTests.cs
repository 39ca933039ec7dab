using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.Nat;

/// <summary>
/// BEP 55 in namespaces (issue 15 item 4, tests/nat-lab/holepunch.sh): a leecher and a seeder, real `peerway get`
/// processes, each behind a port-restricted cone NAT (iptables: UDP SNAT to one WAN port, new inbound UDP dropped)
/// that they cannot cross directly, and a public `peerway get` that fetches only another file of the torrent and
/// relays the rendezvous. The leecher's file can only come from the seeder, through the punched uTP path: the test
/// checks the exit code, the file's SHA-256 against the source, and that the relay relayed. The script's namespaces
/// (utp-hp-*) are its own, torn down on exit, and by <see cref="Dispose"/> after a killed run.
/// </summary>
public sealed partial class HolepunchLabTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(8);
    private readonly string _script = Path.Combine(RepoRoot.Find(), "tests", "nat-lab", "holepunch.sh");

    [NatLabFact]
    public async Task Two_peers_behind_port_restricted_cone_nats_download_through_a_hole_the_public_peer_relays()
    {
        RequiredTool.Require("ip", "apt-get install iproute2");
        RequiredTool.Require("iptables", "apt-get install iptables");
        if (!Environment.IsPrivilegedProcess) Assert.Fail("the NAT lab needs root (network namespaces, iptables); ./test.sh runs as root in CI");
        await using var p = ExternalProcess.Start(_script, ["run"], Timeout);
        var code = await p.WaitForExitAsync(Timeout);
        var all = $"holepunch.sh run exited {code}\n{p.Stdout}\n{p.Stderr}";
        output.WriteLine(all);
        Assert.True(code == 0, all);
        var summary = p.StdoutLines.Select(l => Summary().Match(l)).FirstOrDefault(m => m.Success);
        Assert.True(summary is not null, $"no summary line\n{all}");
        Assert.Equal("0", summary.Groups["rc"].Value);
        Assert.Equal(summary.Groups["want"].Value, summary.Groups["got"].Value);
        Assert.True(int.Parse(summary.Groups["relayed"].Value, System.Globalization.CultureInfo.InvariantCulture) >= 1, all);
        Assert.Contains(p.StdoutLines, l => l.StartsWith("[a stdout] complete: content 1 of 2 files, 8388608 bytes", StringComparison.Ordinal));
    }

    public void Dispose()
    {
        if (!NatLabFactAttribute.CanRun) return;
        using var down = System.Diagnostics.Process.Start(_script, "down");
        down.WaitForExit(TimeSpan.FromMinutes(1));
    }

    [GeneratedRegex(@"^holepunch: get exit (?<rc>[0-9]+) in [0-9]+s; big\.bin sha256 (?<got>[0-9a-f]*) \(source (?<want>[0-9a-f]{64})\); rendezvous relayed (?<relayed>[0-9]+); punched dials [0-9]+$")]
    private static partial Regex Summary();
}
