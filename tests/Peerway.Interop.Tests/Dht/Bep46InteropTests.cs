using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>
/// Issue 17 §2: BEP 46 (mutable torrents) on a loopback DHT. bittorrent-dht (npm, tests/interop-peers/dht-bep44.mjs put-torrent)
/// puts the item <c>{ih}</c> that a <c>magnet:?xs=urn:btpk:…</c> names, and `peerway get` resolves it and downloads the
/// torrent from a `peerway share`; and `peerway share --publish` publishes what `peerway get --seed` follows (by default
/// when it stays up to seed), fetching the next torrent into the same directory when the publisher's seq rises.
/// </summary>
public sealed partial class Bep46InteropTests
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(120);

    [GeneratedRegex(@"urn:btih:([0-9a-fA-F]{40})")]
    private static partial Regex InfoHash();

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task A_BEP_46_item_bittorrent_dht_puts_is_resolved_and_downloaded_by_peerway()
    {
        await using var node = await ServedNode.StartAsync();
        var dir = Directory.CreateTempSubdirectory("pw-bep46-").FullName;
        try
        {
            var content = Path.Combine(dir, "release-1.bin");
            await File.WriteAllBytesAsync(content, RandomNumberGenerator.GetBytes(300_000));
            await using var share = PeerwayCli.Start(["share", content, "--bind", "127.0.0.1", "--dht-bootstrap", node.EndPoint, "--lsd", "off"]);
            var hash = InfoHash().Match(await share.WaitForStdoutAsync(l => l.StartsWith("magnet:", StringComparison.Ordinal), Lifetime)).Groups[1].Value.ToLowerInvariant();

            var seed = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            var put = await Bep44InteropTests.JsAsync("put-torrent", node.EndPoint, hash, seed, "release", "7");
            Assert.True(put.GetProperty("n").GetInt32() > 0, put.ToString());
            var magnet = $"magnet:?xs=urn:btpk:{put.GetProperty("k").GetString()}&s={Convert.ToHexStringLower(Encoding.UTF8.GetBytes("release"))}";

            var output = Path.Combine(dir, "out");
            var got = await PeerwayCli.RunAsync("get", magnet, "-o", output, "--bind", "127.0.0.1", "--dht-bootstrap", node.EndPoint, "--lsd", "off", "--timeout", "90");
            Assert.True(got.ExitCode == 0, got.ToString());
            Assert.Contains($"resolved: seq 7 info-hash {hash}", got.StdoutLines);
            Assert.Contains(got.StdoutLines, l => l.StartsWith("complete:", StringComparison.Ordinal) && l.EndsWith(hash, StringComparison.Ordinal));
            Assert.Equal(await File.ReadAllBytesAsync(content), await File.ReadAllBytesAsync(Path.Combine(output, "release-1.bin")));

            // Another salt names another item: nothing there, exit 1.
            var none = await PeerwayCli.RunAsync("get", magnet.Replace("&s=", "&s=00", StringComparison.Ordinal), "-o", output, "--bind", "127.0.0.1", "--dht-bootstrap", node.EndPoint, "--lsd", "off", "--timeout", "60");
            Assert.True(none.ExitCode == 1, none.ToString());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_follower_fetches_each_torrent_the_publisher_publishes_into_the_same_directory()
    {
        await using var node = await ServedNode.StartAsync();
        var dir = Directory.CreateTempSubdirectory("pw-bep46-").FullName;
        try
        {
            var keyFile = Path.Combine(dir, "publisher.key");
            var keygen = await PeerwayCli.RunAsync("dht", "keygen", "-o", keyFile);
            Assert.True(keygen.ExitCode == 0, keygen.ToString());
            var first = Path.Combine(dir, "first.bin");
            var second = Path.Combine(dir, "second.bin");
            await File.WriteAllBytesAsync(first, RandomNumberGenerator.GetBytes(200_000));
            await File.WriteAllBytesAsync(second, RandomNumberGenerator.GetBytes(250_000));

            string[] publish = ["--bind", "127.0.0.1", "--dht-bootstrap", node.EndPoint, "--lsd", "off", "--publish", keyFile, "--salt", "channel"];
            var firstShare = PeerwayCli.Start(["share", first, .. publish]);
            string magnet;
            await using (firstShare)
            {
                magnet = await firstShare.WaitForStdoutAsync(l => l.StartsWith("magnet:?xs=urn:btpk:", StringComparison.Ordinal), Lifetime);
                Assert.Equal($"magnet:?xs=urn:btpk:{Assert.Single(keygen.StdoutLines)}&s={Convert.ToHexStringLower("channel"u8)}", magnet);
                await firstShare.WaitForStderrAsync(l => l.Contains(" seq 1 on ", StringComparison.Ordinal), Lifetime);

                var output = Path.Combine(dir, "out");
                await using var get = PeerwayCli.Start(["get", magnet, "-o", output, "--bind", "127.0.0.1", "--dht-bootstrap", node.EndPoint, "--lsd", "off", "--seed", "--follow-interval", "1"]);
                await get.WaitForStdoutAsync(l => l.StartsWith("complete: first.bin", StringComparison.Ordinal), Lifetime);
                Assert.Equal(await File.ReadAllBytesAsync(first), await File.ReadAllBytesAsync(Path.Combine(output, "first.bin")));

                // The publisher moves on to the next torrent: seq 2 (one above the highest found); the follower sees it on
                // its next check and fetches it into the same directory.
                await using var secondShare = PeerwayCli.Start(["share", second, .. publish]);
                await secondShare.WaitForStderrAsync(l => l.Contains(" seq 2 on ", StringComparison.Ordinal), Lifetime);
                await get.WaitForStdoutAsync(l => l.StartsWith("resolved: seq 2 ", StringComparison.Ordinal), Lifetime);
                await get.WaitForStdoutAsync(l => l.StartsWith("complete: second.bin", StringComparison.Ordinal), Lifetime);
                Assert.Equal(await File.ReadAllBytesAsync(second), await File.ReadAllBytesAsync(Path.Combine(output, "second.bin")));
                Assert.True(File.Exists(Path.Combine(output, "first.bin")));

                await get.SignalAsync("INT");
                Assert.Equal(0, await get.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
