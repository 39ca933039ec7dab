using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.TestSupport;

namespace Peerway.Interop.Tests.Dht;

/// <summary>
/// Issue 17 §3, BEP 32 for share/get with real processes: an IPv6-only seeder (`peerway share --bind ::1`, bootstrapped
/// from an IPv6-only `dht serve` on ::1) is found through the IPv6 DHT by `peerway get --bind 127.0.0.1`, which joins
/// both DHTs (an IPv4 `dht serve` and the IPv6 one, `--dht-bootstrap` of both families), and downloads from it.
/// With `--dht-ipv6 off` an IPv6 bootstrap address is a usage error.
/// </summary>
public sealed partial class DualStackShareGetProcessTests : IDisposable
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(120);
    private readonly TempDirectory _temp = new("peerway-dual-share");

    [GeneratedRegex(@"^node ([0-9a-f]{40}) listening (\S+)$")]
    private static partial Regex NodeLine();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_downloader_on_both_dhts_finds_an_ipv6_only_seeder_through_an_ipv6_only_dht_node()
    {
        await using var dht4 = PeerwayCli.Start("dht", "serve", "--bind", "127.0.0.1:0");
        var node4 = await EndPointAsync(dht4);
        await using var dht6 = PeerwayCli.Start("dht", "serve", "--bind", "[::1]:0", "-v");
        var node6 = await EndPointAsync(dht6);

        var content = Path.Combine(_temp.Path, "v6-only.bin");
        await File.WriteAllBytesAsync(content, RandomNumberGenerator.GetBytes(300_000));
        await using var share = PeerwayCli.Start("share", content, "--bind", "::1", "--dht-bootstrap", node6, "--lsd", "off");
        var magnet = await share.WaitForStdoutAsync(l => l.StartsWith("magnet:", StringComparison.Ordinal), Lifetime);
        // The seeder is in the IPv6 DHT only: its announce reaches the IPv6 node, never the IPv4 one.
        await dht6.WaitForStderrAsync(l => l.StartsWith("node added ", StringComparison.Ordinal), Lifetime);

        var output = Path.Combine(_temp.Path, "out");
        var got = await PeerwayCli.RunAsync("get", magnet, "-o", output, "--bind", "127.0.0.1", "--dht-bootstrap", node4, "--dht-bootstrap", node6,
            "--lsd", "off", "--timeout", "90");
        Assert.True(got.ExitCode == 0, got.ToString());
        Assert.Contains(got.StdoutLines, l => l.StartsWith("complete: v6-only.bin", StringComparison.Ordinal));
        Assert.Equal(await File.ReadAllBytesAsync(content), await File.ReadAllBytesAsync(Path.Combine(output, "v6-only.bin")));

        // The IPv6 DHT left out: its bootstrap address is a usage error, before anything is fetched.
        var off = await PeerwayCli.RunAsync("get", magnet, "-o", Path.Combine(_temp.Path, "off"), "--bind", "127.0.0.1", "--dht-bootstrap", node4,
            "--dht-bootstrap", node6, "--dht-ipv6", "off", "--lsd", "off", "--timeout", "30");
        Assert.True(off.ExitCode == 2, off.ToString());
        Assert.Contains("--dht-ipv6 off", off.Stderr, StringComparison.Ordinal);
    }

    private static async Task<string> EndPointAsync(ExternalProcess serve)
    {
        var m = NodeLine().Match(await serve.WaitForStdoutAsync(_ => true, PeerwayCli.DefaultLifetime));
        Assert.True(m.Success, serve.Stdout);
        return m.Groups[2].Value;
    }
}
