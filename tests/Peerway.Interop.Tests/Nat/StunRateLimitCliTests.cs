using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Nat.Stun;

namespace Peerway.Interop.Tests.Nat;

/// <summary>
/// Issue 20 §5 through the CLI: `peerway stun-server` limits what one source gets by default, and `--rate-limit 0` (as
/// the benchmarks run it) answers everything. A second source's request, sent after the flood, marks the point where
/// the server (one receive loop) has read the whole flood.
/// </summary>
public sealed partial class StunRateLimitCliTests
{
    private const int Flood = 100;
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [RequiresToolFact]
    public async Task By_default_one_source_gets_a_burst_then_the_rate_and_with_rate_limit_0_every_answer()
    {
        var (answered, limited, elapsed) = await FloodAsync();
        // Default: 20 per second with a burst of 40 (and the marker's own answer).
        Assert.InRange(answered, 2, 1 + 40 + (int)Math.Ceiling(20 * elapsed.TotalSeconds));
        Assert.Equal(Flood + 1, answered + limited);

        (answered, limited, _) = await FloodAsync("--rate-limit", "0");
        Assert.Equal(0, limited);
        Assert.Equal(Flood + 1, answered);
    }

    private static async Task<(int Answered, int RateLimited, TimeSpan Elapsed)> FloodAsync(params string[] extra)
    {
        var port = FreePort.Udp();
        await using var server = PeerwayCli.Start(["stun-server", "--bind", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), "--threads", "1", .. extra]);
        await server.WaitForStdoutAsync(l => l.StartsWith("stun-server: udp", StringComparison.Ordinal), PeerwayCli.DefaultLifetime);
        var target = new IPEndPoint(IPAddress.Loopback, port);
        using var attacker = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        using var marker = new UdpClient(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Flood; i++) await attacker.SendAsync(BindingRequest(), target);
        await marker.SendAsync(BindingRequest(), target);
        using (var cts = new CancellationTokenSource(Generous))
        {
            await marker.ReceiveAsync(cts.Token);
        }

        var elapsed = clock.Elapsed;
        await server.SignalAsync("INT");
        var summary = await server.WaitForStdoutAsync(l => l.StartsWith("stun-server: answered", StringComparison.Ordinal), Generous);
        Assert.Equal(0, await server.WaitForExitAsync(Generous));
        var match = Summary().Match(summary);
        Assert.True(match.Success, summary);
        return (int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture), elapsed);
    }

    private static byte[] BindingRequest()
    {
        var buffer = new byte[StunLimits.HeaderSize];
        var w = new StunWriter(buffer, StunMethod.Binding, StunClass.Request, StunClient.NewTransactionId());
        return buffer[..w.Length];
    }

    [GeneratedRegex(@"answered (\d+) requests, dropped \d+, rate-limited (\d+)")]
    private static partial Regex Summary();
}
