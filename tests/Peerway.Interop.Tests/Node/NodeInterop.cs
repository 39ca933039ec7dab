using System.Diagnostics;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;

namespace Peerway.Interop.Tests.Node;

/// <summary>A running <c>peerway node</c> on free loopback ports, with its endpoints read from its first stdout line.</summary>
internal sealed class RunningNode
{
    private RunningNode(RunningProcess process, string rpcUrl, string apiUrl, string gatewayUrl, int peerPort, string swarm)
    {
        Swarm = swarm;
        Process = process;
        PeerPort = peerPort;
        RpcUrl = rpcUrl;
        ApiUrl = apiUrl;
        GatewayUrl = gatewayUrl;
    }

    public RunningProcess Process { get; }

    /// <summary>http://127.0.0.1:PORT/transmission/rpc</summary>
    public string RpcUrl { get; }

    /// <summary>127.0.0.1:PORT/transmission/rpc, as transmission-remote takes it.</summary>
    public string RemoteTarget => RpcUrl["http://".Length..];

    public string ApiUrl { get; }

    public string GatewayUrl { get; }

    /// <summary>The BitTorrent peer port (TCP, and uTP on UDP), from the banner's <c>peers tcp PORT</c>.</summary>
    public int PeerPort { get; }

    /// <summary>The IPFS peer's address, <c>/ip4/127.0.0.1/tcp/PORT/p2p/&lt;PeerId&gt;</c>, from the banner's <c>swarm …</c>.</summary>
    public string Swarm { get; }

    /// <summary>SIGTERM (a graceful stop); returns the exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        Assert.True(await Process.WaitForExitAsync(TimeSpan.FromSeconds(60)), "peerway node did not stop on SIGTERM");
        return Process.ExitCode;
    }

    /// <summary>Starts <c>peerway node --data DATA</c> with every port picked by the system, and waits for its first line.</summary>
    public static async Task<RunningNode> StartAsync(TorrentInterop env, string data, params string[] extra)
    {
        var p = env.StartPeerway(["node", "--data", data, "--rpc", "127.0.0.1:0", "--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--swarm", "127.0.0.1:0", "--dht-port", "0", "--peer-port", "0", .. extra]);
        string line;
        try
        {
            line = await p.FirstLineAsync(TimeSpan.FromMinutes(4));
        }
        catch (InvalidOperationException)
        {
            throw new InvalidOperationException($"peerway node exited: {p.Stderr}");
        }

        // node: rpc http://… api http://… gateway http://… dht udp … peers tcp … [turn udp+tcp …] swarm /ip4/…/p2p/…
        var words = line.Split(' ');
        Assert.True(words.Length >= 9 && words[0] == "node:" && words[1] == "rpc" && words[3] == "api" && words[5] == "gateway" && words[7] == "dht" && words[8] == "udp", line);
        var peers = Array.IndexOf(words, "peers");
        var peerPort = peers > 0 && peers + 2 < words.Length && int.TryParse(words[peers + 2], out var port) ? port : 0;
        var swarm = Array.IndexOf(words, "swarm");
        Assert.True(swarm > 0 && swarm + 1 < words.Length && words[swarm + 1].StartsWith("/ip4/127.0.0.1/tcp/", StringComparison.Ordinal) && words[swarm + 1].Contains("/p2p/12D3KooW", StringComparison.Ordinal), line);
        return new RunningNode(p, words[2], words[4], words[6], peerPort, words[swarm + 1]);
    }
}

/// <summary>Runs Debian's <c>transmission-remote</c> (transmission-cli 3.00) against a node.</summary>
internal static class TransmissionRemote
{
    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(TorrentInterop env, RunningNode node, params string[] args)
    {
        var p = env.Start(TorrentInterop.Require("transmission-remote"), [node.RemoteTarget, .. args]);
        Assert.True(await p.WaitForExitAsync(TimeSpan.FromSeconds(60)), $"transmission-remote {string.Join(' ', args)} did not exit");
        return (p.ExitCode, p.Stdout, p.Stderr);
    }

    /// <summary>The rows of <c>transmission-remote -l</c> by id: the columns ID Done Have ETA Up Down Ratio Status Name.</summary>
    public static async Task<Dictionary<int, string>> ListAsync(TorrentInterop env, RunningNode node)
    {
        var (code, stdout, stderr) = await RunAsync(env, node, "-l");
        Assert.True(code == 0, stderr);
        var rows = new Dictionary<int, string>();
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1))
        {
            var first = line.TrimStart().Split(' ', 2)[0].TrimEnd('*');
            if (int.TryParse(first, out var id)) rows[id] = line;
        }

        return rows;
    }

    /// <summary>Polls <c>-l</c> (the client's own view, as a user would watch it) until <paramref name="done"/> holds or the deadline passes.</summary>
    public static async Task<Dictionary<int, string>> WaitForListAsync(TorrentInterop env, RunningNode node, Func<Dictionary<int, string>, bool> done, TimeSpan deadline)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var rows = await ListAsync(env, node);
            if (done(rows)) return rows;
            Assert.True(sw.Elapsed < deadline, $"transmission-remote -l never showed the expected state:\n{string.Join('\n', rows.Values)}\n--- node stderr ---\n{node.Process.Stderr}");
            await Task.Delay(250);
        }
    }
}
