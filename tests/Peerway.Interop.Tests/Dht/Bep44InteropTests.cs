using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>
/// Issue 17 §5: BEP 44 both ways with bittorrent-dht (npm, tests/interop-peers/dht-bep44.mjs) on loopback. Items that
/// bittorrent-dht puts on a `peerway dht serve` node are got by `peerway dht get`; items that `peerway dht put` stores
/// on a bittorrent-dht node are got by a fresh bittorrent-dht client — immutable and mutable (with salt) each way.
/// </summary>
public sealed partial class Bep44InteropTests
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(90);

    [GeneratedRegex(@"^node ([0-9a-f]{40}) listening (\S+)$")]
    private static partial Regex FirstLine();

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Items_bittorrent_dht_puts_on_a_peerway_node_are_got_by_peerway()
    {
        await using var node = await ServedNode.StartAsync();

        var put = await JsAsync("put", node.EndPoint, "hello from bittorrent-dht");
        Assert.True(put.GetProperty("n").GetInt32() > 0, put.ToString());
        var target = put.GetProperty("target").GetString()!;
        var got = await PeerwayCli.RunAsync("dht", "get", target, "--bootstrap", node.EndPoint, "--bind", "127.0.0.1", "--timeout", "60");
        Assert.True(got.ExitCode == 0, got.ToString());
        Assert.Equal(["hello from bittorrent-dht"], got.StdoutLines);

        var seed = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var mutable = await JsAsync("put", node.EndPoint, "mutable from js", seed, "status", "5");
        Assert.True(mutable.GetProperty("n").GetInt32() > 0, mutable.ToString());
        var publicKey = mutable.GetProperty("k").GetString()!;
        got = await PeerwayCli.RunAsync("dht", "get", "--public-key", publicKey, "--salt", "status", "--bootstrap", node.EndPoint, "--bind", "127.0.0.1", "--timeout", "60");
        Assert.True(got.ExitCode == 0, got.ToString());
        Assert.Equal(["mutable from js", "seq 5"], got.StdoutLines);

        // With the wrong salt the signature does not verify for that target: nothing found, exit 1.
        got = await PeerwayCli.RunAsync("dht", "get", "--public-key", publicKey, "--salt", "other", "--bootstrap", node.EndPoint, "--bind", "127.0.0.1", "--timeout", "60");
        Assert.Equal(1, got.ExitCode);
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Items_peerway_puts_on_a_bittorrent_dht_node_are_got_by_bittorrent_dht()
    {
        var nodeJs = RequiredTool.Require("node", "apt-get install nodejs");
        var peers = RequiredTool.RequireNpmPeers();
        await using var js = ExternalProcess.Start(nodeJs, ["dht-serve.mjs"], Lifetime * 2, peers);
        var m = FirstLine().Match(await js.WaitForStdoutAsync(_ => true, Lifetime));
        Assert.True(m.Success);
        var endPoint = m.Groups[2].Value;

        var put = await PeerwayCli.RunAsync("dht", "put", "hello from peerway", "--bootstrap", endPoint, "--bind", "127.0.0.1", "--timeout", "60");
        Assert.True(put.ExitCode == 0, put.ToString());
        var line = Assert.Single(put.StdoutLines);
        Assert.Matches("^[0-9a-f]{40} stored on 1 nodes$", line);
        var got = await JsAsync("get", endPoint, line[..40]);
        Assert.Equal("hello from peerway", got.GetProperty("v").GetString());

        var keyFile = Path.Combine(Path.GetTempPath(), $"pw-bep44-{Guid.NewGuid():N}.key");
        try
        {
            var keygen = await PeerwayCli.RunAsync("dht", "keygen", "-o", keyFile);
            Assert.True(keygen.ExitCode == 0, keygen.ToString());
            var publicKey = Assert.Single(keygen.StdoutLines);
            put = await PeerwayCli.RunAsync("dht", "put", "--key", keyFile, "--salt", "status", "first", "--bootstrap", endPoint, "--bind", "127.0.0.1", "--timeout", "60");
            Assert.True(put.ExitCode == 0, put.ToString());
            line = Assert.Single(put.StdoutLines);
            Assert.Matches("^[0-9a-f]{40} seq 1 stored on 1 nodes$", line);
            put = await PeerwayCli.RunAsync("dht", "put", "--key", keyFile, "--salt", "status", "second", "--bootstrap", endPoint, "--bind", "127.0.0.1", "--timeout", "60");
            Assert.True(put.ExitCode == 0, put.ToString());
            Assert.Matches("^[0-9a-f]{40} seq 2 stored on 1 nodes$", Assert.Single(put.StdoutLines)); // seq found through bittorrent-dht

            got = await JsAsync("get", endPoint, line[..40], "status");
            Assert.Equal("second", got.GetProperty("v").GetString());
            Assert.Equal(2, got.GetProperty("seq").GetInt32());
            Assert.Equal(publicKey, got.GetProperty("k").GetString());

            // Going back to seq 1: bittorrent-dht refuses with 302, so nothing is stored: exit 1, saying why.
            put = await PeerwayCli.RunAsync("dht", "put", "--key", keyFile, "--salt", "status", "--seq", "1", "stale", "--bootstrap", endPoint, "--bind", "127.0.0.1", "--timeout", "60");
            Assert.Equal(1, put.ExitCode);
            Assert.Contains("302", put.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    /// <summary>Runs tests/interop-peers/dht-bep44.mjs (bittorrent-dht) and returns its JSON line (also used by the BEP 46 tests).</summary>
    internal static async Task<JsonElement> JsAsync(params string[] args)
    {
        var nodeJs = RequiredTool.Require("node", "apt-get install nodejs");
        var peers = RequiredTool.RequireNpmPeers();
        await using var run = ExternalProcess.Start(nodeJs, ["dht-bep44.mjs", .. args], Lifetime, peers);
        var code = await run.WaitForExitAsync(Lifetime);
        var json = run.StdoutLines.LastOrDefault(l => l.StartsWith('{'));
        Assert.True(code == 0 && json is not null, $"dht-bep44.mjs {string.Join(' ', args)} exited {code}\n{run.Stdout}\n{run.Stderr}");
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }
}
