using Peerway.Dht;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>
/// The CLI contract of `./peerway dht serve` as a real process: the first stdout line, a clean exit 0 on SIGTERM and
/// SIGINT with the state file saved, and a restart that reuses the id.
/// </summary>
public sealed class ServeProcessTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-serve-proc");

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    public async Task Serve_saves_its_state_and_exits_0_on_a_signal_and_restarts_with_the_same_id(string signal)
    {
        var state = Path.Combine(_temp.Path, $"{signal}.state");
        string firstId;
        await using (var a = await ServedNode.StartAsync("--state", state))
        {
            var ping = await PeerwayCli.RunAsync("dht", "ping", a.EndPoint, "--bind", "127.0.0.1");
            Assert.True(ping.ExitCode == 0, ping.ToString());
            Assert.Equal(a.Id, Assert.Single(ping.StdoutLines));
            await a.Process.SignalAsync(signal);
            Assert.Equal(0, await a.Process.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Single(a.Process.StdoutLines);
            firstId = a.Id;
        }

        Assert.True(DhtNode.TryLoadState(await File.ReadAllBytesAsync(state), out var saved));
        Assert.Equal(firstId, saved!.Id.ToString());

        await using var again = await ServedNode.StartAsync("--state", state);
        Assert.Equal(firstId, again.Id);
        Assert.Equal(0, await again.StopAsync());
    }
}
