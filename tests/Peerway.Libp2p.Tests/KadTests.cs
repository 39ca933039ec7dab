using System.Net;
using Peerway.Core.Multiformats;
using Peerway.Libp2p.Kad;
using Peerway.Libp2p.Protocols;
using Peerway.Net;

namespace Peerway.Libp2p.Tests;

/// <summary>The IPFS Kademlia DHT: its message codec, and Peerway nodes on loopback TCP finding each other's records.</summary>
public sealed class KadTests : IAsyncDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly List<IAsyncDisposable> _owned = [];

    internal static KadMessage SampleMessage(PeerId id, Multiaddr address)
    {
        var m = new KadMessage { Type = KadMessageType.GetProviders, Key = Multihash.Sha256("k"u8).Bytes.ToArray() };
        m.CloserPeers.Add(new KadPeer(id, [address]));
        m.ProviderPeers.Add(new KadPeer(id, []));
        return m;
    }

    [Fact]
    public void A_message_round_trips_and_undecodable_peers_are_skipped()
    {
        using var key = PeerKey.Generate();
        var address = Multiaddr.FromTcp(new IPEndPoint(IPAddress.Loopback, 4001));
        var m = SampleMessage(key.Id, address);
        Assert.Equal(Libp2pError.None, KadMessage.TryDecode(m.Encode(), out var back));
        Assert.Equal(KadMessageType.GetProviders, back!.Type);
        Assert.Equal(m.Key, back.Key);
        var closer = Assert.Single(back.CloserPeers);
        Assert.Equal(key.Id, closer.Id);
        Assert.Equal(address, Assert.Single(closer.Addresses));
        Assert.Equal(key.Id, Assert.Single(back.ProviderPeers).Id);

        // A peer whose id does not decode is left out; an unknown message type is an error.
        var bad = new ProtoWriter().Varint(1, 4).Bytes(8, new ProtoWriter().Bytes(1, [0xff, 0xff]).Written).ToArray();
        Assert.Equal(Libp2pError.None, KadMessage.TryDecode(bad, out var skipped));
        Assert.Empty(skipped!.CloserPeers);
        Assert.Equal(Libp2pError.UnknownProtocol, KadMessage.TryDecode(new ProtoWriter().Varint(1, 9).ToArray(), out _));
    }

    private async Task<(Libp2pHost Host, KadDht Dht)> NodeAsync()
    {
        var host = new Libp2pHost(PeerKey.Generate(), new TcpStreamTransport());
        var dht = new KadDht(host, new KadDhtOptions { K = 4, QueryTimeout = TimeSpan.FromSeconds(20) });
        _owned.Add(host);
        _owned.Add(dht);
        await host.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        return (host, dht);
    }

    [Fact]
    public async Task Eight_nodes_bootstrapped_through_one_find_a_provider_record_stored_on_the_closest()
    {
        var nodes = new List<(Libp2pHost Host, KadDht Dht)>();
        for (var i = 0; i < 8; i++) nodes.Add(await NodeAsync());
        // A chain of introductions: node i knows only node i - 1; lookups must walk the network to converge.
        for (var i = 1; i < nodes.Count; i++) Assert.Equal(1, await nodes[i].Dht.BootstrapAsync([nodes[i - 1].Host.ListenAddresses[0]], CancellationToken.None).WaitAsync(Bound));
        var cid = Cid.V1(0x55, Multihash.Sha256("provided"u8));
        var stored = await nodes[7].Dht.ProvideAsync(cid, CancellationToken.None).WaitAsync(Bound);
        Assert.InRange(stored, 1, 4);

        var found = await nodes[0].Dht.FindProvidersAsync(cid, 5, CancellationToken.None).WaitAsync(Bound);
        var provider = Assert.Single(found);
        Assert.Equal(nodes[7].Host.PeerId, provider.Peer);
        Assert.Contains(provider.Addresses, a => a.TryGetTcpEndPoint(out var ep) && ep!.Port == GetEndPoint(nodes[7].Host).Port);
        Assert.Empty(await nodes[0].Dht.FindProvidersAsync(Cid.V1(0x55, Multihash.Sha256("nobody"u8)), 5, CancellationToken.None).WaitAsync(Bound));
    }

    [Fact]
    public async Task A_provider_record_for_another_peer_is_refused()
    {
        var (server, serverDht) = await NodeAsync();
        await using var client = new Libp2pHost(PeerKey.Generate(), new TcpStreamTransport());
        using var other = PeerKey.Generate();
        var connection = await client.DialAsync(server.ListenAddresses[0], CancellationToken.None);
        var key = Multihash.Sha256("forged"u8).Bytes.ToArray();
        var claim = new KadMessage { Type = KadMessageType.AddProvider, Key = key };
        claim.ProviderPeers.Add(new KadPeer(other.Id, [Multiaddr.FromTcp(new IPEndPoint(IPAddress.Loopback, 9))]));
        claim.ProviderPeers.Add(new KadPeer(client.PeerId, [Multiaddr.FromTcp(new IPEndPoint(IPAddress.Loopback, 10))]));
        await using (var stream = await connection.OpenStreamAsync(KadDht.ProtocolId, CancellationToken.None))
        {
            await LengthPrefixed.WriteAsync(stream, claim.Encode(), CancellationToken.None);
        }

        // Ask on a second stream: the answer comes after the ADD_PROVIDER was handled (one stream per request, in order
        // of arrival on the connection is not promised, so ask until the honest record shows up).
        KadMessage? answer = null;
        for (var attempt = 0; attempt < 50 && answer?.ProviderPeers.Count is not > 0; attempt++)
        {
            await using var ask = await connection.OpenStreamAsync(KadDht.ProtocolId, CancellationToken.None);
            await LengthPrefixed.WriteAsync(ask, new KadMessage { Type = KadMessageType.GetProviders, Key = key }.Encode(), CancellationToken.None);
            Assert.Equal(Libp2pError.None, KadMessage.TryDecode(await LengthPrefixed.ReadAsync(ask, KadMessage.MaxMessage, CancellationToken.None), out answer));
        }

        var only = Assert.Single(answer!.ProviderPeers);
        Assert.Equal(client.PeerId, only.Id);
        Assert.Equal(1, serverDht.ProviderKeys);
    }

    private static IPEndPoint GetEndPoint(Libp2pHost host) =>
        host.ListenAddresses[0].TryGetTcpEndPoint(out var ep) ? ep! : throw new InvalidOperationException("no TCP address");

    public async ValueTask DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--) await _owned[i].DisposeAsync();
    }
}
