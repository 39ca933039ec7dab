using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// How soon a torrent dials the peers it is given (issue 14 item 9: a download's first byte waits for its first
/// connection). In a <see cref="SimulatedSwarm"/>: virtual network with a 10 ms one-way latency, fake clock, one thread.
/// </summary>
public sealed class DialLatencyTests
{
    private static readonly byte[] Payload = RandomNumberGenerator.GetBytes(64 * 1024);
    private static readonly TorrentMetainfo Meta = SimulatedSwarm.MakeTorrent(Payload, 16 * 1024);

    /// <summary>
    /// A tracker's (or the DHT's, or PEX's) peers are dialled when they arrive, not at the next tick: that is up to
    /// 100 ms later, and a full second later while the torrent had no peer at all (the ticker's idle period), which is
    /// how every download starts.
    /// </summary>
    [Fact]
    public void Peers_given_to_a_torrent_without_peers_are_dialled_at_once_not_at_its_next_tick() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm(new VirtualStreamNetworkOptions { Latency = static (_, _) => TimeSpan.FromMilliseconds(10) });
        var host = swarm.Network.AddEndpoint();
        var listener = swarm.Own(swarm.Run(() => host.ListenAsync(new IPEndPoint(host.Address, 6881), CancellationToken.None).AsTask()));
        var leecher = swarm.AddPeer(options: new TorrentClientOptions { Encryption = EncryptionPolicy.Off });
        var download = leecher.Add(Meta);
        // No peer yet: the ticker slows down to its idle period.
        swarm.RunFor(TimeSpan.FromSeconds(3));
        var accepting = SimulatedSwarm.StartAsync(() => listener.AcceptAsync(CancellationToken.None).AsTask());
        download.Session!.AddPeers([listener.LocalEndPoint]);
        // The connect's round trip is 20 ms; a dial left to the next tick would come 100 ms from now at the earliest.
        swarm.Wait(accepting, "the peer was not dialled before the torrent's next tick", TimeSpan.FromMilliseconds(50));
        var accepted = swarm.Run(() => accepting);
        Assert.NotNull(accepted);
        swarm.Run(() => accepted.DisposeAsync().AsTask());
    });
}
