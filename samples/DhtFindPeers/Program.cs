// Finds peers in the Mainline DHT (BEP 5): 8 nodes on loopback form a swarm, one announces an info-hash, another
// looks it up and prints the peers the DHT returned.
using System.Net;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Net;

using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
var nodes = new List<DhtNode>();
try
{
    for (var i = 0; i < 8; i++)
    {
        var socket = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
        var node = new DhtNode(socket, TimeProvider.System, new DhtOptions());
        node.Start();
        nodes.Add(node);
    }

    // Every node joins through the first one (its bootstrap router).
    var router = nodes[0].LocalEndPoint;
    foreach (var node in nodes.Skip(1)) await node.BootstrapAsync([router], cancel.Token);
    await nodes[0].BootstrapAsync([nodes[1].LocalEndPoint], cancel.Token);
    Console.WriteLine($"swarm: {nodes.Count} nodes on 127.0.0.1");

    var infoHash = NodeId.Random();
    var announced = await nodes[3].AnnounceAsync(infoHash, port: 6881, impliedPort: false, cancel.Token);
    Console.WriteLine($"announced {infoHash} port 6881 to {announced.AnnouncedTo} nodes");

    var found = await nodes[6].GetPeersAsync(infoHash, cancel.Token);
    foreach (var peer in found.Peers.Distinct()) Console.WriteLine($"peer {peer}");
    return found.Peers.Contains(new IPEndPoint(IPAddress.Loopback, 6881)) ? 0 : 1;
}
finally
{
    // DisposeAsync stops the node and disposes its socket.
    foreach (var node in nodes) await node.DisposeAsync();
}
