using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Peerway.Dht;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.TestSupport;

namespace Peerway.Interop.Tests.Dht;

/// <summary>BEP 32 dual stack with real processes: `peerway dht serve --bind 127.0.0.1:0 --bind [::1]:0` runs a paired
/// IPv4 and IPv6 node with one id, answers a <c>want: ["n4", "n6"]</c> find_node with "nodes" learned from an IPv4
/// peer and "nodes6" learned from an IPv6 peer, and keeps both tables in its state file.</summary>
public sealed partial class DualStackServeProcessTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-dual-serve");

    [GeneratedRegex(@"^node ([0-9a-f]{40}) listening (\S+)$")]
    private static partial Regex NodeLine();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_dual_stack_serve_answers_want_n4_n6_from_both_families_and_saves_both_tables()
    {
        var state = Path.Combine(_temp.Path, "dual.state");
        await using var dual = PeerwayCli.Start("dht", "serve", "--bind", "127.0.0.1:0", "--bind", "[::1]:0", "--state", state, "-v");
        var (id, v4EndPoint, v6EndPoint) = await ReadNodeLinesAsync(dual);

        // One peer per family joins through the node of its family; each then sits in that node's routing table.
        await using var peer4 = PeerwayCli.Start("dht", "serve", "--bind", "127.0.0.1:0", "--bootstrap", v4EndPoint.ToString());
        var m4 = NodeLine().Match(await peer4.WaitForStdoutAsync(_ => true, PeerwayCli.DefaultLifetime));
        await using var peer6 = PeerwayCli.Start("dht", "serve", "--bind", "[::1]:0", "--bootstrap", v6EndPoint.ToString());
        var m6 = NodeLine().Match(await peer6.WaitForStdoutAsync(_ => true, PeerwayCli.DefaultLifetime));
        Assert.True(m4.Success && m6.Success, peer4.Stdout + "\n" + peer6.Stdout);
        var added4 = $"node added {m4.Groups[1].Value} {m4.Groups[2].Value}";
        var added6 = $"node added {m6.Groups[1].Value} {m6.Groups[2].Value}";
        await dual.WaitForStderrAsync(l => l == added4, PeerwayCli.DefaultLifetime);
        await dual.WaitForStderrAsync(l => l == added6, PeerwayCli.DefaultLifetime);

        // A find_node over IPv4 asking for both families: "nodes" from the IPv4 table, "nodes6" from the IPv6 one.
        var reply = await FindNodeAsync(v4EndPoint, "4:wantl2:n42:n6e");
        Assert.Equal(id, reply.Id.ToString());
        var nodes4 = KrpcCodec.ReadCompactNodes(reply.Nodes.Span, AddressFamily.InterNetwork);
        var nodes6 = KrpcCodec.ReadCompactNodes(reply.Nodes6.Span, AddressFamily.InterNetworkV6);
        Assert.Contains(nodes4, c => c.Id.ToString() == m4.Groups[1].Value && c.EndPoint.ToString() == m4.Groups[2].Value);
        Assert.Contains(nodes6, c => c.Id.ToString() == m6.Groups[1].Value && c.EndPoint.ToString() == m6.Groups[2].Value);
        Assert.DoesNotContain(nodes4, c => c.Id.ToString() == m6.Groups[1].Value);
        // The same over IPv6.
        reply = await FindNodeAsync(v6EndPoint, "4:wantl2:n42:n6e");
        Assert.Contains(KrpcCodec.ReadCompactNodes(reply.Nodes.Span, AddressFamily.InterNetwork), c => c.Id.ToString() == m4.Groups[1].Value);
        Assert.Contains(KrpcCodec.ReadCompactNodes(reply.Nodes6.Span, AddressFamily.InterNetworkV6), c => c.Id.ToString() == m6.Groups[1].Value);

        // SIGTERM: one state file with the id and both tables ("nodes" and "nodes6"); a restart keeps the id for both.
        await dual.SignalAsync("TERM");
        Assert.Equal(0, await dual.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(DhtNode.TryLoadState(await File.ReadAllBytesAsync(state), out var saved));
        Assert.Equal(id, saved!.Id.ToString());
        Assert.Contains(saved.Nodes, c => c.Id.ToString() == m4.Groups[1].Value && c.EndPoint.AddressFamily == AddressFamily.InterNetwork);
        Assert.Contains(saved.Nodes, c => c.Id.ToString() == m6.Groups[1].Value && c.EndPoint.AddressFamily == AddressFamily.InterNetworkV6);
        await using var again = PeerwayCli.Start("dht", "serve", "--bind", "[::1]:0", "--bind", "127.0.0.1:0", "--state", state);
        var (againId, _, _) = await ReadNodeLinesAsync(again);
        Assert.Equal(id, againId);

        // Two addresses of one family, or a third --bind, are usage errors.
        Assert.Equal(2, (await PeerwayCli.RunAsync("dht", "serve", "--bind", "127.0.0.1:0", "--bind", "127.0.0.2:0")).ExitCode);
        Assert.Equal(2, (await PeerwayCli.RunAsync("dht", "serve", "--bind", "127.0.0.1:0", "--bind", "[::1]:0", "--bind", "[::1]:0")).ExitCode);
    }

    [Fact]
    public async Task The_dht_client_commands_take_bind_with_an_ipv6_port()
    {
        // A plain UDP socket on ::1 plays the queried node: it sees where the ping comes from and answers it.
        using var server = new UdpClient(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        var serverEndPoint = (IPEndPoint)server.Client.LocalEndPoint!;
        int port;
        using (var probe = new UdpClient(new IPEndPoint(IPAddress.IPv6Loopback, 0))) port = ((IPEndPoint)probe.Client.LocalEndPoint!).Port;
        await using var ping = PeerwayCli.Start("dht", "ping", serverEndPoint.ToString(), "--bind", $"[::1]:{port}", "--timeout", "60");
        using var timeout = new CancellationTokenSource(PeerwayCli.DefaultLifetime);
        var query = await server.ReceiveAsync(timeout.Token);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, port), query.RemoteEndPoint);
        Assert.True(KrpcCodec.TryDecode(query.Buffer, out var message, out var error), error.ToString());
        byte[] pong = [.. "d1:rd2:id20:"u8, .. "peerway-test-pinged1"u8, .. "e1:t"u8,
            .. System.Text.Encoding.ASCII.GetBytes($"{message.TransactionId.Length}:"), .. message.TransactionId.ToArray(), .. "1:y1:re"u8];
        await server.SendAsync(pong, query.RemoteEndPoint, timeout.Token);
        Assert.Equal(0, await ping.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal([Convert.ToHexStringLower("peerway-test-pinged1"u8)], ping.StdoutLines);

        // The same parser as `dht serve`: a bad port is a usage error.
        Assert.Equal(2, (await PeerwayCli.RunAsync("dht", "ping", serverEndPoint.ToString(), "--bind", "[::1]:70000")).ExitCode);
    }

    /// <summary>The node lines: one per node, the same id, an IPv4 and an IPv6 endpoint (in either order).</summary>
    private static async Task<(string Id, IPEndPoint V4, IPEndPoint V6)> ReadNodeLinesAsync(ExternalProcess process)
    {
        var lines = new[]
        {
            await process.WaitForStdoutAsync(l => l.Contains(" listening 127.0.0.1:", StringComparison.Ordinal), PeerwayCli.DefaultLifetime),
            await process.WaitForStdoutAsync(l => l.Contains(" listening [::1]:", StringComparison.Ordinal), PeerwayCli.DefaultLifetime),
        };
        var matches = lines.Select(l => NodeLine().Match(l)).ToList();
        Assert.True(matches.All(m => m.Success), process.Stdout);
        Assert.Equal(matches[0].Groups[1].Value, matches[1].Groups[1].Value);
        var endPoints = matches.Select(m => IPEndPoint.Parse(m.Groups[2].Value)).ToList();
        var v4 = Assert.Single(endPoints, e => e.AddressFamily == AddressFamily.InterNetwork);
        var v6 = Assert.Single(endPoints, e => e.AddressFamily == AddressFamily.InterNetworkV6);
        Assert.Equal(IPAddress.IPv6Loopback, v6.Address);
        return (matches[0].Groups[1].Value, v4, v6);
    }

    /// <summary>One find_node query (BEP 5, with the BEP 32 "want" key) from a plain UDP socket, and its decoded reply.</summary>
    private static async Task<KrpcMessage> FindNodeAsync(IPEndPoint to, string want)
    {
        byte[] query = [.. "d1:ad2:id20:"u8, .. "peerway-test-asker-1"u8, .. "6:target20:"u8, .. "dual-stack-target-01"u8,
            .. System.Text.Encoding.ASCII.GetBytes(want), .. "e1:q9:find_node1:t2:dq1:y1:qe"u8];
        using var udp = new UdpClient(new IPEndPoint(to.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await udp.SendAsync(query, to, timeout.Token);
        var received = await udp.ReceiveAsync(timeout.Token);
        Assert.True(KrpcCodec.TryDecode(received.Buffer, out var reply, out var error), error.ToString());
        return reply;
    }
}
