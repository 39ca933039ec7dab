using Peerway.Interop.Tests.Infrastructure;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// transmission-daemon 3 and Peerway exchange a file given only a magnet link (no tracker): each finds the other
/// through a Peerway Mainline DHT (BEP 5). Both directions; the SHA-256 of what arrived is checked.
/// </summary>
/// <remarks>
/// Why the set-up looks like this (transmission 3.00, libtransmission/tr-dht.c and its bundled jech/dht):
/// <list type="bullet">
/// <item>jech/dht drops DHT nodes on 127/8 as martian, and transmission ignores 127/8 peers, so Peerway runs in
/// namespace A (10.77.1.1) and transmission in namespace B (10.77.1.2), joined by a veth pair.</item>
/// <item>transmission searches the DHT only once its routing table is at least "poor": ≥ 4 nodes that answered and
/// more than 8 nodes in all (tr_dhtStatus). One bootstrap node is never enough, so <see cref="DhtNodes"/> `peerway dht
/// serve` nodes run, and transmission learns them from a dht.dat in its config directory (the routing table it saves
/// on exit: bencoded id and compact "nodes"), which it pings 8 quickly, then one every ~15 s. A dht.bootstrap file
/// (HOST PORT lines) also works but waits ~15 s after each line.</item>
/// <item>Reaching "poor" takes ~15–30 s; transmission then re-announces every 5–10 s until it has peers.</item>
/// </list>
/// </remarks>
public sealed class TransmissionDhtInteropTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(150);
    private const int FileSize = 4 * 1024 * 1024 + 7;

    /// <summary>tr_dhtStatus: fewer than 9 nodes in the routing table is "broken" (no search, no announce).</summary>
    private const int DhtNodes = 9;

    // Fixed ports are safe: the two namespaces are private to each test.
    private const int FirstDhtPort = 7000;
    private const int PeerwayPeerPort = 6000;
    private const int TransmissionPeerPort = 51413;
    private const int RpcPort = 9091;

    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    private static string Bootstrap => $"{VethNamespaces.AddressA}:{P(FirstDhtPort)}";

    /// <summary>Starts the Peerway DHT in namespace A: <see cref="DhtNodes"/> nodes joined through the first.</summary>
    private static async Task StartPeerwayDhtAsync(TorrentInterop env, VethNamespaces net)
    {
        var nodes = new List<RunningProcess>();
        for (var i = 0; i < DhtNodes; i++)
        {
            List<string> args = ["dht", "serve", "--bind", VethNamespaces.AddressA, "--port", P(FirstDhtPort + i)];
            if (i > 0) args.AddRange(["--bootstrap", Bootstrap, "--timeout", "10"]);
            nodes.Add(net.StartInA(env, env.Launcher, args));
        }

        foreach (var node in nodes) Assert.Contains("listening", await node.FirstLineAsync(Deadline), StringComparison.Ordinal);
    }

    /// <summary>
    /// transmission-daemon in namespace B: DHT on, LPD, uTP and port mapping off, RPC on its loopback, and a dht.dat
    /// listing the Peerway DHT nodes (nothing else is reachable from namespace B anyway).
    /// </summary>
    private static RunningProcess StartTransmission(TorrentInterop env, VethNamespaces net, string daemon, string downloadDir)
    {
        var config = Path.Combine(env.Root, "transmission");
        Directory.CreateDirectory(config);
        Directory.CreateDirectory(downloadDir);
        var settings = $$"""
            {"dht-enabled": true, "lpd-enabled": false, "utp-enabled": false, "pex-enabled": true, "port-forwarding-enabled": false,
             "bind-address-ipv4": "{{VethNamespaces.AddressB}}", "peer-port": {{P(TransmissionPeerPort)}}, "peer-port-random-on-start": false,
             "rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": {{P(RpcPort)}}, "rpc-authentication-required": false,
             "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false, "download-dir": "{{downloadDir}}",
             "incomplete-dir-enabled": false, "start-added-torrents": true, "message-level": 2}
            """;
        File.WriteAllText(Path.Combine(config, "settings.json"), settings);
        File.WriteAllBytes(Path.Combine(config, "dht.dat"), DhtDat());
        return net.StartInB(env, daemon, ["-f", "-g", config]);
    }

    /// <summary>transmission's saved DHT state: d2:id20:&lt;id&gt;5:nodes&lt;6 bytes per node: IPv4, port&gt;e (BEP 5 compact node info).</summary>
    private static byte[] DhtDat()
    {
        var ip = IPAddress.Parse(VethNamespaces.AddressA).GetAddressBytes();
        var nodes = new byte[DhtNodes * 6];
        for (var i = 0; i < DhtNodes; i++)
        {
            ip.CopyTo(nodes, i * 6);
            nodes[(i * 6) + 4] = (byte)((FirstDhtPort + i) >> 8);
            nodes[(i * 6) + 5] = (byte)(FirstDhtPort + i);
        }

        using var dat = new MemoryStream();
        dat.Write("d2:id20:"u8);
        dat.Write(RandomNumberGenerator.GetBytes(20));
        dat.Write(Encoding.ASCII.GetBytes($"5:nodes{P(nodes.Length)}:"));
        dat.Write(nodes);
        dat.Write("e"u8);
        return dat.ToArray();
    }

    /// <summary>Runs transmission-remote in namespace B, retrying while the daemon's RPC server is still starting.</summary>
    private static async Task RemoteAsync(TorrentInterop env, VethNamespaces net, string remote, RunningProcess daemon, params string[] args)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var last = string.Empty;
        while (sw.Elapsed < Deadline)
        {
            Assert.False(daemon.HasExited, "transmission-daemon exited: " + daemon.Stderr);
            var p = net.StartInB(env, remote, [$"127.0.0.1:{P(RpcPort)}", .. args]);
            Assert.True(await p.WaitForExitAsync(TimeSpan.FromSeconds(30)), "transmission-remote hung");
            if (p.ExitCode == 0 && p.Stdout.Contains("success", StringComparison.Ordinal)) return;
            last = p.Stdout + p.Stderr;
            await Task.Delay(250);
        }

        Assert.Fail($"transmission-remote {string.Join(' ', args)} failed: {last}");
    }

    private static string Tail(string s) => s.Length <= 4000 ? s : s[^4000..];

    [RequiresToolFact("transmission-daemon", "transmission-remote", "ip")]
    public async Task Transmission_fetches_a_magnet_from_peerway_through_the_dht()
    {
        var daemon = TorrentInterop.Require("transmission-daemon");
        var remote = TorrentInterop.Require("transmission-remote");
        await using var env = new TorrentInterop("tr-dht-dl");
        await using var net = VethNamespaces.Create();
        await StartPeerwayDhtAsync(env, net);
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var share = net.StartPeerwayInA(env, "share", source, "--port", P(PeerwayPeerPort), "--dht-bootstrap", Bootstrap);
        var magnet = await share.FirstLineAsync(Deadline);
        Assert.StartsWith("magnet:?xt=urn:btih:", magnet);
        Assert.DoesNotContain("tr=", magnet, StringComparison.Ordinal);

        var target = Path.Combine(env.Root, "transmission-dl");
        var tr = StartTransmission(env, net, daemon, target);
        // The magnet only: transmission finds `peerway share` through the DHT, fetches the info dictionary with
        // ut_metadata (BEP 9), then the pieces.
        await RemoteAsync(env, net, remote, tr, "-a", magnet);
        Assert.True(await TorrentInterop.WaitForFileAsync(Path.Combine(target, "payload.bin"), sha, Deadline, tr),
            $"transmission did not receive the file.\npeerway: {Tail(share.Stderr)}\ntransmission: {Tail(tr.Stderr)}");
    }

    [RequiresToolFact("transmission-daemon", "transmission-remote", "ip")]
    public async Task Peerway_fetches_a_magnet_from_transmission_through_the_dht()
    {
        var daemon = TorrentInterop.Require("transmission-daemon");
        var remote = TorrentInterop.Require("transmission-remote");
        await using var env = new TorrentInterop("tr-dht-up");
        await using var net = VethNamespaces.Create();
        await StartPeerwayDhtAsync(env, net);
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (code, magnet, err) = await env.RunPeerwayAsync(Deadline, "create", source, "-o", torrent);
        Assert.True(code == 0, err);

        // transmission verifies the existing file against the .torrent, seeds it and announces itself to the DHT.
        var tr = StartTransmission(env, net, daemon, Path.GetDirectoryName(source)!);
        await RemoteAsync(env, net, remote, tr, "-a", torrent);
        await RemoteAsync(env, net, remote, tr, "-t", "1", "-v");
        var dl = Path.Combine(env.Root, "dl");
        var get = net.StartPeerwayInA(env, "get", magnet.Trim(), "-o", dl, "--port", P(PeerwayPeerPort), "--dht-bootstrap", Bootstrap, "--timeout", "130");
        Assert.True(await get.WaitForExitAsync(Deadline), "peerway get did not finish");
        Assert.True(get.ExitCode == 0, $"peerway get failed: {Tail(get.Stderr)}\ntransmission: {Tail(tr.Stderr)}");
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }
}
