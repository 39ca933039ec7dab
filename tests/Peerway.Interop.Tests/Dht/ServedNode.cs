using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>A `./peerway dht serve` process on loopback and what its first stdout line says.</summary>
internal sealed partial class ServedNode : IAsyncDisposable
{
    private ServedNode(ExternalProcess process, string id, string endPoint)
    {
        Process = process;
        Id = id;
        EndPoint = endPoint;
    }

    public ExternalProcess Process { get; }

    public string Id { get; }

    /// <summary>ip:port as printed on the first line.</summary>
    public string EndPoint { get; }

    public int Port => int.Parse(EndPoint[(EndPoint.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^node ([0-9a-f]{40}) listening (\S+)$")]
    private static partial Regex FirstLine();

    public static async Task<ServedNode> StartAsync(params string[] extraArgs)
    {
        var process = PeerwayCli.Start(["dht", "serve", "--bind", "127.0.0.1", "--port", "0", .. extraArgs]);
        try
        {
            var first = await process.WaitForStdoutAsync(_ => true, PeerwayCli.DefaultLifetime);
            var m = FirstLine().Match(first);
            Assert.True(m.Success, $"unexpected first line: {first}");
            return new ServedNode(process, m.Groups[1].Value, m.Groups[2].Value);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>SIGTERM, then the exit code (the CLI contract: saves state, exits 0).</summary>
    public async Task<int> StopAsync()
    {
        await Process.SignalAsync("TERM");
        return await Process.WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    public ValueTask DisposeAsync() => Process.DisposeAsync();
}
