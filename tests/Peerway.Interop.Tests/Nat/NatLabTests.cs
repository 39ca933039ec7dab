using System.Globalization;
using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.Nat;

/// <summary>
/// The NAT lab (tests/nat-lab/lab.sh): real `peerway connect` processes in network namespaces behind iptables NATs,
/// with Peerway's TURN server (also answering STUN), an RFC 5780 STUN server and the signaling server on a public
/// segment. Which pairs connect directly follows from the NATs' RFC 4787 behaviour:
/// <list type="bullet">
/// <item>"cone" (MASQUERADE + a home router's drop of unsolicited inbound UDP) maps endpoint-independently (Linux keeps
/// the source port for every destination) and filters address-and-port-dependently: two of them punch through with
/// simultaneous checks to each other's server-reflexive address.</item>
/// <item>"symmetric" (MASQUERADE --random-fully + the same drop) maps every new destination to a new random port. Its
/// checks reach a cone peer from a port that peer never sent to, so the cone's filter drops them, and the cone's checks
/// go to the symmetric side's server-reflexive port, which only the STUN server may use: no direct path, RFC 8445
/// falls back to the relay. Two symmetric NATs likewise need the relay.</item>
/// <item>"full" (static DNAT of all inbound UDP: endpoint-independent filtering) lets the symmetric side's check in from
/// its new port; the full-cone side learns it as peer-reflexive and answers: direct.</item>
/// </list>
/// </summary>
public sealed partial class NatLabTests(NatLabFixture lab, ITestOutputHelper output) : IClassFixture<NatLabFixture>
{
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Seconds the paths of two cases are held after the exchange: longer than the 12 s after which an agent
    /// without consent responses turns Disconnected (RFC 7675 checks every 5 s ± 20 %).</summary>
    private const string HoldSeconds = "15";

    [NatLabFact]
    public Task Cone_to_cone_connects_directly_through_server_reflexive_candidates_and_keeps_consent() =>
        ConnectAsync("cone1", "cone2", "srflx", "--hold", HoldSeconds);

    [NatLabFact]
    public Task Cone_to_symmetric_falls_back_to_the_relay() => ConnectAsync("cone1", "sym1", "relay");

    [NatLabFact]
    public Task Symmetric_to_symmetric_falls_back_to_the_relay_exchanges_messages_and_keeps_consent() =>
        ConnectAsync("sym1", "sym2", "relay", "--hold", HoldSeconds);

    [NatLabFact]
    public Task Full_cone_to_symmetric_connects_directly() => ConnectAsync("full", "sym2", "srflx");

    /// <summary>
    /// 10 % of the UDP datagrams dropped each way on both routers (iptables' statistic match; netem is absent): the
    /// checks, the TURN transactions and the message exchange retransmit. The pair type cannot change (the relay is the
    /// only path between symmetric NATs), so the assertion stays exact.
    /// </summary>
    [NatLabFact]
    public async Task Symmetric_to_symmetric_relay_survives_random_loss_on_both_routers()
    {
        lab.RequireUp();
        await LabAsync("loss", "sym1", "10");
        await LabAsync("loss", "sym2", "10");
        try
        {
            await ConnectAsync("sym1", "sym2", "relay");
        }
        finally
        {
            await LabAsync("loss", "sym1", "0");
            await LabAsync("loss", "sym2", "0");
        }
    }

    /// <summary>
    /// Issue 13: a peer behind a symmetric NAT reaches a peer behind another symmetric NAT through Peerway's TURN server,
    /// and a WebRTC data channel (DTLS + SCTP + DCEP, `peerway connect --datachannel`) over that relayed path carries
    /// 1 MiB each way (64 × 16 KiB), every message echoed intact by the other side.
    /// </summary>
    [NatLabFact]
    public async Task Symmetric_to_symmetric_data_channel_through_the_relay_echoes_one_MiB_each_way()
    {
        lab.RequireUp();
        var tag = Guid.NewGuid().ToString("N")[..8];
        await using var p = ExternalProcess.Start(lab.Script, ["connect", "sym1", "sym2", tag, "--datachannel", "--count", "64", "--size", "16384"], CaseTimeout);
        var code = await p.WaitForExitAsync(CaseTimeout);
        var all = $"lab.sh connect sym1 sym2 --datachannel exited {code}\n{p.Stdout}\n{p.Stderr}";
        output.WriteLine(all);
        Assert.True(code == 0, all);
        foreach (var me in new[] { "sym1", "sym2" })
        {
            var connected = p.StdoutLines.Select(l => ConnectedLine().Match(l)).FirstOrDefault(m => m.Success && m.Groups["n"].Value == me);
            Assert.True(connected is not null, $"{me} printed no 'connected:' line\n{all}");
            Assert.True(connected.Groups["kind"].Value == "relay", $"{me} selected a {connected.Groups["kind"].Value} pair, expected relay\n{all}");
            Assert.Contains(p.StdoutLines, l => l.StartsWith($"[{me} exit 0] echoed 64 of 64 messages (1048576 bytes) in ", StringComparison.Ordinal));
        }
    }

    private async Task LabAsync(params string[] args)
    {
        await using var p = ExternalProcess.Start(lab.Script, args, CaseTimeout);
        var code = await p.WaitForExitAsync(CaseTimeout);
        Assert.True(code == 0, $"lab.sh {string.Join(' ', args)} exited {code}\n{p.Stdout}\n{p.Stderr}");
    }

    /// <summary>
    /// cone2 and sym2 also share an "office" link (172.16.0.0/24): with a host candidate per interface (RFC 8445
    /// §5.1.1.1) they meet host to host over it, where their NATs alone would need the relay.
    /// </summary>
    [NatLabFact]
    public Task Peers_sharing_a_second_network_connect_host_to_host_over_it() => ConnectAsync("cone2", "sym2", "host");

    /// <summary>The relay is needed: without TURN, two symmetric NATs leave ICE no working pair.</summary>
    [NatLabFact]
    public async Task Symmetric_to_symmetric_without_a_relay_fails()
    {
        lab.RequireUp();
        var tag = Guid.NewGuid().ToString("N")[..8];
        await using var p = ExternalProcess.Start(lab.Script, ["connect", "sym1", "sym2", tag, "--no-turn"], CaseTimeout);
        var code = await p.WaitForExitAsync(CaseTimeout);
        var all = $"lab.sh connect sym1 sym2 --no-turn exited {code}\n{p.Stdout}\n{p.Stderr}";
        output.WriteLine(all);
        Assert.NotEqual(0, code);
        foreach (var n in new[] { "sym1", "sym2" })
        {
            Assert.Contains($"[{n} stderr] peerway: connect: ICE failed: every candidate pair failed.", p.StdoutLines);
            Assert.DoesNotContain(p.StdoutLines, l => l.StartsWith($"[{n} exit 0] connected:", StringComparison.Ordinal));
        }
    }

    [NatLabTheory]
    [InlineData("cone1", "endpoint-independent", "address-and-port-dependent")]
    [InlineData("sym1", "address-and-port-dependent", "address-and-port-dependent")]
    [InlineData("full", "endpoint-independent", "endpoint-independent")]
    public async Task Nat_probe_reports_the_behaviour_of_the_nat_that_was_built(string lan, string mapping, string filtering)
    {
        lab.RequireUp();
        await using var p = ExternalProcess.Start(lab.Script, ["probe", lan], CaseTimeout);
        var code = await p.WaitForExitAsync(CaseTimeout);
        output.WriteLine(p.Stdout);
        Assert.True(code == 0, $"probe from {lan} exited {code}\n{p.Stdout}\n{p.Stderr}");
        Assert.Contains(p.StdoutLines, l => Regex.IsMatch(l, $"^mapping: +{Regex.Escape(mapping)}$"));
        Assert.Contains(p.StdoutLines, l => Regex.IsMatch(l, $"^filtering: +{Regex.Escape(filtering)}$"));
        // The mapped address is the router's WAN address on the public segment, not the LAN address.
        Assert.Contains(p.StdoutLines, l => l.StartsWith("mapped address:  203.0.113.", StringComparison.Ordinal));
    }

    private async Task ConnectAsync(string a, string b, string expected, params string[] options)
    {
        lab.RequireUp();
        var tag = Guid.NewGuid().ToString("N")[..8];
        await using var p = ExternalProcess.Start(lab.Script, ["connect", a, b, tag, .. options], CaseTimeout);
        var code = await p.WaitForExitAsync(CaseTimeout);
        var all = $"lab.sh connect {a} {b} exited {code}\n{p.Stdout}\n{p.Stderr}";
        output.WriteLine(all);
        Assert.True(code == 0, all);
        foreach (var (me, them) in new[] { (a, b), (b, a) })
        {
            var connected = p.StdoutLines.Select(l => ConnectedLine().Match(l)).FirstOrDefault(m => m.Success && m.Groups["n"].Value == me);
            Assert.True(connected is not null, $"{me} printed no 'connected:' line\n{all}");
            Assert.True(connected.Groups["kind"].Value == expected, $"{me} selected a {connected.Groups["kind"].Value} pair, expected {expected}\n{all}");
            Assert.Contains($"[{me} exit 0] received: hello from {them}-{tag}", p.StdoutLines);
            if (options.Contains("--hold"))
            {
                // RFC 7675: consent responses kept coming over the NATs (or the relay), so the path is still Connected.
                Assert.Contains(p.StdoutLines, l => l.StartsWith($"[{me} exit 0] held: {HoldSeconds} s, state Connected, ", StringComparison.Ordinal));
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{a} <-> {b}: {me} connected ({expected}) in {connected.Groups["ms"].Value} ms"));
        }
    }

    [GeneratedRegex(@"^\[(?<n>[a-z0-9]+) exit 0\] connected: (?<kind>[a-z]+) \(.*\) in (?<ms>[0-9]+) ms$")]
    private static partial Regex ConnectedLine();
}

/// <summary>
/// Brings the lab up once for <see cref="NatLabTests"/> and always tears it down (lab.sh down removes every natlab-*
/// namespace, which also removes leftovers of an earlier run that was killed).
/// </summary>
public sealed class NatLabFixture : IAsyncLifetime
{
    private static readonly TimeSpan UpTimeout = TimeSpan.FromMinutes(5);
    private bool _attempted;
    private string? _failure;

    public string Script { get; } = Path.Combine(RepoRoot.Find(), "tests", "nat-lab", "lab.sh");

    public async Task InitializeAsync()
    {
        if (!NatLabFactAttribute.CanRun) return;
        _attempted = true;
        await using var p = ExternalProcess.Start(Script, ["up"], UpTimeout);
        int code;
        try
        {
            code = await p.WaitForExitAsync(UpTimeout);
        }
        catch (TimeoutException ex)
        {
            _failure = ex.Message;
            return;
        }

        if (code != 0) _failure = $"lab.sh up exited {code}\n{p.Stdout}\n{p.Stderr}";
    }

    /// <summary>Fails the calling test when the lab cannot run here (reached under CI=true) or did not come up.</summary>
    public void RequireUp()
    {
        RequiredTool.Require("ip", "apt-get install iproute2");
        RequiredTool.Require("iptables", "apt-get install iptables");
        if (!Environment.IsPrivilegedProcess) Assert.Fail("the NAT lab needs root (network namespaces, iptables); ./test.sh runs as root in CI");
        Assert.True(_attempted, "the NAT lab was not started: `ip netns add` is refused here (an unprivileged container?)");
        Assert.True(_failure is null, _failure);
    }

    public async Task DisposeAsync()
    {
        if (!_attempted) return;
        await using var p = ExternalProcess.Start(Script, ["down"], UpTimeout);
        await p.WaitForExitAsync(UpTimeout);
    }
}

/// <summary>A NAT lab fact: skipped without root, ip or iptables, unless CI=true (then it fails).</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
internal sealed class NatLabFactAttribute : FactAttribute
{
    public NatLabFactAttribute()
    {
        if (Reason() is { } reason) Skip = reason;
    }

    private static readonly Lazy<bool> CanRunLazy = new(Probe);

    /// <summary>True when the lab can be built here: root, ip and iptables, and network namespaces allowed.</summary>
    public static bool CanRun => CanRunLazy.Value;

    public static string? Reason() =>
        RequiredTool.IsCi || CanRun ? null : "the NAT lab needs root, ip, iptables and network namespaces (./test.sh as root; under CI=true this fails)";

    /// <summary>Root in an unprivileged container may still be refused namespaces: try one (and remove it).</summary>
    private static bool Probe()
    {
        if (!Environment.IsPrivilegedProcess || RequiredTool.Find("ip") is not { } ip || RequiredTool.Find("iptables") is null) return false;
        var name = $"natlab-check-{Environment.ProcessId}";
        bool Ip(params string[] args)
        {
            using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(ip, args) { RedirectStandardError = true, RedirectStandardOutput = true });
            if (p is null) return false;
            if (!p.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                p.Kill();
                return false;
            }

            return p.ExitCode == 0;
        }

        var ok = Ip("netns", "add", name);
        if (ok) Ip("netns", "del", name);
        return ok;
    }
}

/// <summary>The theory twin of <see cref="NatLabFactAttribute"/>.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
internal sealed class NatLabTheoryAttribute : TheoryAttribute
{
    public NatLabTheoryAttribute()
    {
        if (NatLabFactAttribute.Reason() is { } reason) Skip = reason;
    }
}
