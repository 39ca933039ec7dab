using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Dht;
using Peerway.TestSupport;

namespace Peerway.Node.Tests;

/// <summary>The composition root on real loopback UDP: state file save/restore, rejoin without bootstrap.</summary>
public sealed class DhtHostTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-host");

    public void Dispose() => _temp.Dispose();

    private static DhtHostOptions Loopback(string? state = null) =>
        new() { Bind = new IPEndPoint(IPAddress.Loopback, 0), StatePath = state, Dht = new DhtOptions { QueryTimeout = TimeSpan.FromSeconds(1) } };

    [Fact]
    public async Task A_restarted_host_reuses_its_id_and_rejoins_from_saved_nodes()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var state = Path.Combine(_temp.Path, "b.state");
        await using var a = DhtHost.Start(Loopback(), NullLoggerFactory.Instance);
        NodeId firstId;
        await using (var b = DhtHost.Start(Loopback(state), NullLoggerFactory.Instance))
        {
            Assert.Null(b.RestoredState);
            Assert.True(await b.JoinAsync([a.LocalEndPoint], cts.Token) >= 1);
            firstId = b.Node.Id;
            b.SaveState();
        }

        await using var restarted = DhtHost.Start(Loopback(state), NullLoggerFactory.Instance);
        var size = await restarted.JoinAsync([], cts.Token); // no bootstrap routers at all

        Assert.Equal(firstId, restarted.Node.Id);
        Assert.NotNull(restarted.RestoredState);
        Assert.Contains(restarted.RestoredState!.Nodes, n => n.Id == a.Node.Id);
        Assert.True(size >= 1);
        Assert.Contains(restarted.Node.RoutingTableNodes(), n => n.Id == a.Node.Id);
    }

    [Fact]
    public async Task A_corrupt_state_file_is_refused_and_kept()
    {
        var state = Path.Combine(_temp.Path, "bad.state");
        byte[] junk = [1, 2, 3, 4];
        await File.WriteAllBytesAsync(state, junk);

        var ex = Assert.Throws<InvalidDataException>(() => DhtHost.Start(Loopback(state), NullLoggerFactory.Instance));

        Assert.Contains(state, ex.Message, StringComparison.Ordinal);
        Assert.Equal(junk, await File.ReadAllBytesAsync(state));
    }

    [Fact]
    public async Task Without_a_state_path_saving_writes_nothing()
    {
        await using var host = DhtHost.Start(Loopback(), NullLoggerFactory.Instance);
        host.SaveState();
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void Invalid_options_are_rejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new DhtHostOptions { StatePath = "" }.Validate());
}
