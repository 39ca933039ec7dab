using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Peerway.TestSupport;

namespace Peerway.Cli.Tests;

/// <summary>
/// Issue 20, item 6: <c>tracker</c>, <c>share</c> and <c>get</c> take <c>--bind IP</c> like the other servers: bound to
/// 127.0.0.2 they are reachable there and not on 127.0.0.1 (they used to listen on 0.0.0.0 only).
/// </summary>
public sealed partial class BindOptionTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private readonly TempDirectory _temp = new("peerway-bind");

    public void Dispose() => _temp.Dispose();

    [GeneratedRegex(@"on port (\d+);")]
    private static partial Regex SeedingPort();

    [GeneratedRegex(@"\(port (\d+)\)$")]
    private static partial Regex FetchingPort();

    [GeneratedRegex(@"^http://127\.0\.0\.2:(\d+)/announce$")]
    private static partial Regex AnnounceUrl();

    /// <summary>True when a TCP connection to <paramref name="address"/>:<paramref name="port"/> is accepted.</summary>
    private static async Task<bool> AcceptsAsync(string address, int port)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Parse(address), port).WaitAsync(Patience);
            return true;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return false;
        }
    }

    [Fact]
    public async Task Tracker_bound_to_127_0_0_2_answers_there_and_not_on_127_0_0_1()
    {
        var output = new LineWriter();
        using var stop = new CancellationTokenSource();
        var run = CliRunner.RunAsync(InProcessCli.CreateRoot(), ["tracker", "--bind", "127.0.0.2", "--port", "0"], output, new LineWriter(), stop.Token);
        var url = await output.WaitForLineAsync(_ => true).WaitAsync(Patience);
        var m = AnnounceUrl().Match(url);
        Assert.True(m.Success, url);
        var port = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

        using var http = new HttpClient();
        var scrape = await http.GetAsync(new Uri($"http://127.0.0.2:{port}/scrape"));
        var onOther = await AcceptsAsync("127.0.0.1", port);
        // BEP 15 over UDP is bound to 127.0.0.2 as well: the same port number on 127.0.0.1 is still free for UDP
        // (it would not be, were the tracker's UDP socket on the wildcard address).
        using (var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
        }

        await stop.CancelAsync();

        Assert.Equal(0, await run.WaitAsync(Patience));
        Assert.True(scrape.IsSuccessStatusCode, scrape.ToString());
        Assert.False(onOther, "the tracker accepted a connection on 127.0.0.1");
    }

    [Fact]
    public async Task Share_and_get_bound_to_their_own_loopback_addresses_swap_a_file_and_listen_nowhere_else()
    {
        var file = Path.Combine(_temp.Path, "payload.bin");
        var bytes = RandomNumberGenerator.GetBytes(300_000);
        await File.WriteAllBytesAsync(file, bytes);

        var seedOut = new LineWriter();
        var seedErr = new LineWriter();
        using var stopSeeder = new CancellationTokenSource();
        var seeder = CliRunner.RunAsync(InProcessCli.CreateRoot(), ["share", file, "--bind", "127.0.0.2", "--port", "0"], seedOut, seedErr, stopSeeder.Token);
        var magnet = await seedOut.WaitForLineAsync(_ => true).WaitAsync(Patience);
        var seedPort = int.Parse(SeedingPort().Match(await seedErr.WaitForLineAsync(l => SeedingPort().IsMatch(l)).WaitAsync(Patience)).Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(await AcceptsAsync("127.0.0.2", seedPort));
        Assert.False(await AcceptsAsync("127.0.0.1", seedPort), "the seeder accepted a connection on 127.0.0.1");

        var getOut = new LineWriter();
        var getErr = new LineWriter();
        using var stopGetter = new CancellationTokenSource();
        var output = Path.Combine(_temp.Path, "out");
        var getter = CliRunner.RunAsync(InProcessCli.CreateRoot(),
            ["get", magnet, "-o", output, "--bind", "127.0.0.3", "--port", "0", "--peer", $"127.0.0.2:{seedPort}", "--seed"], getOut, getErr, stopGetter.Token);
        var complete = await getOut.WaitForLineAsync(l => l.StartsWith("complete:", StringComparison.Ordinal)).WaitAsync(Patience);
        var getPort = int.Parse(FetchingPort().Match(await getErr.WaitForLineAsync(l => FetchingPort().IsMatch(l)).WaitAsync(Patience)).Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        var getterOn3 = await AcceptsAsync("127.0.0.3", getPort);
        var getterOn1 = await AcceptsAsync("127.0.0.1", getPort);
        await stopGetter.CancelAsync();
        await stopSeeder.CancelAsync();

        Assert.Equal(0, await getter.WaitAsync(Patience));
        Assert.Equal(0, await seeder.WaitAsync(Patience));
        Assert.Contains("300000 bytes", complete, StringComparison.Ordinal);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(Path.Combine(output, "payload.bin")));
        Assert.True(getterOn3, "the downloader does not listen on 127.0.0.3");
        Assert.False(getterOn1, "the downloader accepted a connection on 127.0.0.1");
    }

    [Theory]
    [InlineData("tracker", "--bind", "localhost")]
    [InlineData("share", "/nonexistent", "--bind", "1.2")]
    [InlineData("get", "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a", "-o", "/tmp/pw-bind-x", "--bind", "nope")]
    public async Task A_bind_that_is_not_an_ip_address_is_a_usage_error(params string[] args)
    {
        var run = await InProcessCli.RunAsync(args);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Matches("^peerway: --bind '[^']+' is not an IP address$", Assert.Single(run.StderrLines));
    }
}
