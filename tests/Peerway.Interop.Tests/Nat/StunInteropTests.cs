using System.Net;
using System.Net.Sockets;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Nat.Stun;
using Peerway.Net;

namespace Peerway.Interop.Tests.Nat;

/// <summary>Our STUN server against coturn's STUN clients (turnutils_stunclient, turnutils_natdiscovery) on loopback.</summary>
public sealed class StunInteropTests
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(60);

    [RequiresToolFact("turnutils_stunclient")]
    public async Task Coturn_stunclient_reads_rfc5780_answers_from_our_server()
    {
        var tool = RequiredTool.Require("turnutils_stunclient", "apt-get install coturn");
        await using var host = NatTestHosts.StartStun(IPAddress.Loopback, IPAddress.Parse("127.0.0.2"));
        var port = host.UdpEndPoints[0].Port;
        await using var client = ExternalProcess.Start(tool, ["-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "127.0.0.1"], ToolTimeout);
        Assert.Equal(0, await client.WaitForExitAsync(ToolTimeout));
        var output = client.Stdout;
        // Three exchanges: plain, then CHANGE-REQUEST with RESPONSE-PORT on a second socket (RFC 5780 §7.2, §7.5).
        Assert.Contains("RFC 5780 response 3", output, StringComparison.Ordinal);
        Assert.Contains($"Other addr: : 127.0.0.2:{port + 1}", output, StringComparison.Ordinal);
        Assert.Contains($"Response origin: : 127.0.0.2:{port + 1}", output, StringComparison.Ordinal);
        Assert.Contains("UDP reflexive addr: 127.0.0.1:", output, StringComparison.Ordinal);
        Assert.Equal(3, host.Server.Answered);
    }

    [RequiresToolFact("turnutils_natdiscovery")]
    public async Task Coturn_natdiscovery_sees_endpoint_independent_behaviour_through_our_server()
    {
        var tool = RequiredTool.Require("turnutils_natdiscovery", "apt-get install coturn");
        await using var host = NatTestHosts.StartStun(IPAddress.Loopback, IPAddress.Parse("127.0.0.2"));
        var port = host.UdpEndPoints[0].Port;
        await using var client = ExternalProcess.Start(tool, ["-m", "-f", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "127.0.0.1"], ToolTimeout);
        Assert.Equal(0, await client.WaitForExitAsync(ToolTimeout));
        Assert.Contains("NAT with Endpoint Independent Mapping!", client.Stdout, StringComparison.Ordinal);
        Assert.Contains("NAT with Endpoint Independent Filtering!", client.Stdout, StringComparison.Ordinal);
    }

    [RequiresToolFact("turnutils_stunclient")]
    public async Task Cli_stun_server_answers_coturn_and_our_probe_and_rejects_bad_input()
    {
        var tool = RequiredTool.Require("turnutils_stunclient", "apt-get install coturn");
        var port = FreePort.Udp();
        await using var server = PeerwayCli.Start("stun-server", "--bind", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--alt", "127.0.0.2");
        await server.WaitForStdoutAsync(l => l.StartsWith("stun-server: udp", StringComparison.Ordinal), PeerwayCli.DefaultLifetime);

        await using (var client = ExternalProcess.Start(tool, ["-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "127.0.0.1"], ToolTimeout))
        {
            Assert.Equal(0, await client.WaitForExitAsync(ToolTimeout));
            Assert.Contains("RFC 5780 response 3", client.Stdout, StringComparison.Ordinal);
        }

        await using (var probe = PeerwayCli.Start("nat", "probe", $"127.0.0.1:{port}"))
        {
            Assert.Equal(0, await probe.WaitForExitAsync(PeerwayCli.DefaultLifetime));
            Assert.Contains("mapping:         no NAT", probe.Stdout, StringComparison.Ordinal);
            Assert.Contains("filtering:       no NAT", probe.Stdout, StringComparison.Ordinal);
            Assert.Contains($"other address:   127.0.0.2:{port + 1}", probe.Stdout, StringComparison.Ordinal);
        }

        await using (var bad = PeerwayCli.Start("nat", "probe", "not-an-endpoint"))
        {
            Assert.Equal(2, await bad.WaitForExitAsync(PeerwayCli.DefaultLifetime));
        }

        await server.SignalAsync("TERM");
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    [RequiresToolFact("turnutils_stunclient")]
    public async Task Coturn_stunclient_over_ipv6_loopback()
    {
        var tool = RequiredTool.Require("turnutils_stunclient", "apt-get install coturn");
        await using var host = NatTestHosts.StartStun(IPAddress.IPv6Loopback, null);
        var port = host.UdpEndPoints[0].Port;
        await using var client = ExternalProcess.Start(tool, ["-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "::1"], ToolTimeout);
        await client.WaitForExitAsync(ToolTimeout);
        Assert.True(host.Server.Answered >= 1, client.Stdout + client.Stderr);
        Assert.Contains("reflexive addr: ::1", client.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Our_client_gets_the_mapped_address_over_udp_ipv6_and_tcp_stream_framing()
    {
        await using var host = NatTestHosts.StartStun(IPAddress.IPv6Loopback, null);
        using (var client = new StunClient(new UdpDatagramSocket(new IPEndPoint(IPAddress.IPv6Loopback, 0)), TimeProvider.System, new StunClientOptions()))
        {
            var response = await client.BindingAsync(host.UdpEndPoints[0]);
            Assert.True(response.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped));
            Assert.Equal(client.LocalEndPoint, mapped);
        }

        // TCP (RFC 8489 §6.2.2): two requests, the first split across writes and the second glued to its tail.
        using var tcp = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        await tcp.ConnectAsync(host.TcpEndPoint);
        byte[] Request(byte[] tid)
        {
            var b = new byte[64];
            var w = new StunWriter(b, StunMethod.Binding, StunClass.Request, tid);
            w.AddFingerprint();
            return b[..w.Length];
        }

        var tid1 = StunClient.NewTransactionId();
        var tid2 = StunClient.NewTransactionId();
        var r1 = Request(tid1);
        var r2 = Request(tid2);
        await tcp.SendAsync(r1.AsMemory(0, 7), SocketFlags.None);
        await tcp.SendAsync(r1.AsMemory(7).ToArray().Concat(r2).ToArray(), SocketFlags.None);
        var buffer = new byte[4096];
        var filled = 0;
        var responses = new List<StunMessage>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (responses.Count < 2)
        {
            filled += await tcp.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, cts.Token);
            while (StunFraming.TryGetFrameLength(buffer.AsSpan(0, filled), out var length) == StunFrameStatus.Complete)
            {
                Assert.True(StunMessage.TryDecode(buffer.AsSpan(0, length), out var m, out _));
                responses.Add(m!);
                buffer.AsSpan(length, filled - length).CopyTo(buffer);
                filled -= length;
            }
        }

        Assert.Equal(tid1, responses[0].TransactionId.ToArray());
        Assert.Equal(tid2, responses[1].TransactionId.ToArray());
        Assert.True(responses[1].TryGetXorAddress(StunAttributeType.XorMappedAddress, out var tcpMapped));
        Assert.Equal(tcp.LocalEndPoint, tcpMapped);
    }
}
