using System.Net;
using Peerway.Core;
using Peerway.Net;

namespace Peerway.Dht.Tests;

/// <summary>DhtNode over real UDP sockets on 127.0.0.1 with the system clock (threads: socket loops and timers).</summary>
public sealed class UdpLoopbackTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Nodes_on_loopback_bootstrap_announce_and_find_peers()
    {
        var nodes = Enumerable.Range(0, 8)
            .Select(_ => new DhtNode(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new DhtOptions()))
            .ToList();
        try
        {
            foreach (var n in nodes) n.Start();
            for (var i = 1; i < nodes.Count; i++)
            {
                Assert.True(await nodes[i].BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None).WaitAsync(Guard) > 0);
            }

            Assert.Equal(nodes[3].Id, await nodes[5].PingAsync(nodes[3].LocalEndPoint, CancellationToken.None).WaitAsync(Guard));
            var infoHash = NodeId.Sha1("loopback"u8);
            var announced = await nodes[2].AnnounceAsync(infoHash, 45000, impliedPort: false, CancellationToken.None).WaitAsync(Guard);
            Assert.True(announced.AnnouncedTo > 0);
            var peers = await nodes[7].GetPeersAsync(infoHash, CancellationToken.None).WaitAsync(Guard);
            Assert.Contains(new IPEndPoint(IPAddress.Loopback, 45000), peers.Peers);
        }
        finally
        {
            foreach (var n in nodes) await n.DisposeAsync();
        }
    }

    [Fact]
    public async Task Disposing_from_a_continuation_on_the_receive_thread_does_not_stall()
    {
        var a = new DhtNode(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new DhtOptions());
        var b = new DhtNode(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new DhtOptions());
        a.Start();
        b.Start();
        try
        {
            var id = await a.PingAsync(b.LocalEndPoint, CancellationToken.None).WaitAsync(Guard);
            Assert.Equal(b.Id, id);
            // This continuation may run on a's receive loop; DisposeAsync must hand the socket's dispose off.
            await a.DisposeAsync().AsTask().WaitAsync(Guard);
        }
        finally
        {
            await a.DisposeAsync();
            await b.DisposeAsync();
        }
    }
}
