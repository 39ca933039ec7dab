using System.Globalization;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Nat;

/// <summary>`peerway signal` and two `peerway connect` processes on loopback: ICE over real UDP sockets.</summary>
public sealed class IceCliTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Two_connects_meet_through_the_signaling_server_and_exchange_messages()
    {
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        await using var signal = PeerwayCli.Start("signal", "--port", port);
        await signal.WaitForStdoutAsync(l => l.StartsWith("signal: listening", StringComparison.Ordinal), Timeout);
        var url = $"http://127.0.0.1:{port}/";
        await using var alice = PeerwayCli.Start("connect", "--signal", url, "--id", "alice", "--peer", "bob");
        await using var bob = PeerwayCli.Start("connect", "--signal", url, "--id", "bob", "--peer", "alice");
        var a = await alice.WaitForExitAsync(Timeout);
        var b = await bob.WaitForExitAsync(Timeout);
        Assert.True(a == 0 && b == 0, $"alice {a}: {alice.Stdout}\n{alice.Stderr}\nbob {b}: {bob.Stdout}\n{bob.Stderr}\nsignal: {signal.Stderr}");
        Assert.Contains(alice.StdoutLines, l => l.StartsWith("connected: host", StringComparison.Ordinal));
        Assert.Contains("received: hello from bob", alice.StdoutLines);
        Assert.Contains("received: hello from alice", bob.StdoutLines);
    }

    [Fact]
    public async Task Connect_rejects_a_non_http_signal_url()
    {
        var result = await PeerwayCli.RunAsync("connect", "--signal", "ftp://x/", "--id", "a", "--peer", "b");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--signal", result.Stderr, StringComparison.Ordinal);
    }
}
