using Peerway.Interop.Tests.Content;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Libp2p;

/// <summary>
/// Issue 19, the connection stack: js-libp2p 3 (the stack under Helia 7: @libp2p/tcp, @libp2p/noise, @libp2p/yamux,
/// @libp2p/identify, @libp2p/ping) and `peerway ipfs` dial each other on loopback, complete multistream-select, the
/// Noise XX handshake (each side proves its peer id) and Yamux, identify each other and ping.
/// </summary>
public sealed class Libp2pInteropTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);
    private readonly string _repo = Directory.CreateTempSubdirectory("pw-libp2p-").FullName;

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Js_libp2p_dials_peerway_identifies_it_and_pings()
    {
        var dir = ContentPeers.Require();
        await using var serve = PeerwayCli.Start("ipfs", "serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--repo", _repo);
        var first = await serve.WaitForStdoutAsync(l => l.StartsWith("ipfs: peer ", StringComparison.Ordinal), Bound);
        // "ipfs: peer <id> listening <multiaddr>/p2p/<id>"
        var parts = first.Split(' ');
        var (peerId, address) = (parts[2], parts[4]);
        Assert.EndsWith("/p2p/" + peerId, address, StringComparison.Ordinal);
        var id = await PeerwayCli.RunAsync("ipfs", "id", "--repo", _repo);
        Assert.Equal(peerId, Assert.Single(id.StdoutLines));

        await using var js = ExternalProcess.Start("node", [Path.Combine(dir, "libp2p-peer.mjs"), "dial", address], Bound, dir);
        Assert.True(await js.WaitForExitAsync(Bound) == 0, $"js-libp2p dial failed\n{js.Stdout}\n{js.Stderr}\npeerway: {serve.Stderr}");
        // js-libp2p identified Peerway: the peer id it proved in Noise, our agent and protocols.
        var identified = js.StdoutLines.Single(l => l.StartsWith("identified ", StringComparison.Ordinal)).Split(' ');
        Assert.Equal(peerId, identified[1]);
        Assert.Equal("peerway/0.1.0", identified[2]);
        Assert.Contains("/ipfs/ping/1.0.0", identified[3].Split(','));
        Assert.Equal(3, js.StdoutLines.Count(l => l.StartsWith("ping ", StringComparison.Ordinal)));
        // And Peerway identified js-libp2p.
        var seen = await serve.WaitForStdoutAsync(l => l.StartsWith("identified ", StringComparison.Ordinal), Bound);
        Assert.Contains(" js-libp2p/", seen, StringComparison.Ordinal);
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Peerway_dials_js_libp2p_identifies_it_and_pings()
    {
        var dir = ContentPeers.Require();
        await using var js = ExternalProcess.Start("node", [Path.Combine(dir, "libp2p-peer.mjs"), "listen"], Bound, dir, redirectStdin: true);
        var address = (await js.WaitForStdoutAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), Bound))["listening ".Length..];
        var jsPeer = address[(address.LastIndexOf('/') + 1)..];

        var ping = await PeerwayCli.RunAsync("ipfs", "ping", address, "--count", "3", "--repo", _repo);
        Assert.True(ping.ExitCode == 0, $"{ping}\njs: {js.Stdout}{js.Stderr}");
        Assert.StartsWith($"peer {jsPeer} agent js-libp2p/", ping.StdoutLines[0], StringComparison.Ordinal);
        Assert.Contains("/ipfs/ping/1.0.0", ping.StdoutLines[0], StringComparison.Ordinal);
        Assert.Equal(3, ping.StdoutLines.Count(l => l.StartsWith("ping ", StringComparison.Ordinal) && l.EndsWith(" ms", StringComparison.Ordinal)));

        // js-libp2p saw the peer id Peerway's repository holds, and identified it.
        var id = await PeerwayCli.RunAsync("ipfs", "id", "--repo", _repo);
        var ours = Assert.Single(id.StdoutLines);
        var seen = await js.WaitForStdoutAsync(l => l.StartsWith($"identified {ours} ", StringComparison.Ordinal), Bound);
        Assert.Contains(" peerway/0.1.0 ", seen, StringComparison.Ordinal);
        js.CloseStdin();
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task A_wrong_peer_id_in_the_address_is_refused_after_the_handshake()
    {
        var dir = ContentPeers.Require();
        await using var js = ExternalProcess.Start("node", [Path.Combine(dir, "libp2p-peer.mjs"), "listen"], Bound, dir, redirectStdin: true);
        var address = (await js.WaitForStdoutAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), Bound))["listening ".Length..];
        var other = Assert.Single((await PeerwayCli.RunAsync("ipfs", "id", "--repo", _repo)).StdoutLines);
        var wrong = address[..(address.LastIndexOf('/') + 1)] + other;

        var ping = await PeerwayCli.RunAsync("ipfs", "ping", wrong, "--repo", _repo);
        Assert.Equal(1, ping.ExitCode);
        Assert.Contains("dialled " + other, ping.Stderr, StringComparison.Ordinal);
        js.CloseStdin();
    }

    [Fact]
    public async Task Bad_arguments_are_one_line_and_exit_2()
    {
        var bad = await PeerwayCli.RunAsync("ipfs", "ping", "/ip4/1.2.3/tcp/1");
        Assert.Equal(2, bad.ExitCode);
        Assert.Single(bad.Stderr.Trim().Split('\n'));
        var udp = await PeerwayCli.RunAsync("ipfs", "serve", "--listen", "/ip4/127.0.0.1/udp/4001", "--repo", _repo);
        Assert.Equal(2, udp.ExitCode);
        const string cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        foreach (var args in new[]
        {
            new[] { "ipfs", "get", cid, "-o", Path.Combine(_repo, "out") }, // no peer
            ["ipfs", "get", "not-a-cid", "-o", Path.Combine(_repo, "out"), "--peer", "/ip4/127.0.0.1/tcp/1"],
            ["ipfs", "get", cid, "-o", Path.Combine(_repo, "out"), "--peer", "/ip4/127.0.0.1/udp/1"],
            ["ipfs", "get", cid, "-o", _repo, "--peer", "/ip4/127.0.0.1/tcp/1"], // an existing directory
        })
        {
            var r = await PeerwayCli.RunAsync(args);
            Assert.True(r.ExitCode == 2, $"{string.Join(' ', args)}: {r}");
            Assert.Single(r.Stderr.Trim().Split('\n'));
        }

        // A peer that cannot be reached is a runtime failure (exit 1), said on stderr.
        var unreachable = await PeerwayCli.RunAsync("ipfs", "get", cid, "-o", Path.Combine(_repo, "out"), "--peer", $"/ip4/127.0.0.1/tcp/{Peerway.TestSupport.FreePort.Tcp()}", "--repo", _repo);
        Assert.Equal(1, unreachable.ExitCode);
        Assert.Contains("no peer could be reached", unreachable.Stderr, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_repo, recursive: true);
}
