using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Peerway.Core.Multiformats;
using Peerway.Libp2p;

namespace Peerway.Node.Daemon;

/// <summary>The kubo calls answered by the node's libp2p/IPFS peer (issue 18 item 3, issue 19).</summary>
public sealed partial class KuboApi
{
    /// <summary>kubo's routing event type for a provider record (go-libp2p core/routing/query.go: <c>Provider = 4</c>).</summary>
    private const int ProviderEvent = 4;

    /// <summary>kubo's <c>routing/findprovs</c> default <c>num-providers</c>.</summary>
    private const int DefaultProviders = 20;

    /// <summary>
    /// <c>id</c> (kubo core/commands/id.go): the peer's <c>ID</c> (base58btc, <c>12D3KooW…</c>), <c>PublicKey</c> (the
    /// protobuf-encoded public key in base64), <c>Addresses</c> (listen multiaddrs with <c>/p2p/</c>),
    /// <c>AgentVersion</c>, <c>ProtocolVersion</c> and <c>Protocols</c> (what the host handles, sorted). Only this node is
    /// answered: an <c>arg</c> naming another peer is an error.
    /// </summary>
    private IResult Id(HttpContext context)
    {
        var host = _ipfs.Host;
        var arg = context.Request.Query["arg"].ToString();
        if (arg.Length > 0 && arg != host.PeerId.ToString()) return Error($"id: only this node's id is answered, not {arg}");
        return KuboResult(new JsonObject
        {
            ["ID"] = host.PeerId.ToString(),
            ["PublicKey"] = Convert.ToBase64String(_ipfs.Key.EncodedPublicKey),
            ["Addresses"] = new JsonArray([.. host.ListenAddresses.Select(a => JsonValue.Create(a.ToString()))]),
            ["AgentVersion"] = host.AgentVersion,
            ["ProtocolVersion"] = Libp2pHost.IpfsProtocolVersion,
            ["Protocols"] = new JsonArray([.. host.Protocols.Select(p => JsonValue.Create(p))]),
        });
    }

    /// <summary>
    /// <c>routing/findprovs</c>: kubo's routing events as NDJSON, one <c>Provider</c> event per provider found by the IPFS
    /// DHT (<see cref="Peerway.Libp2p.Kad.KadDht.FindProvidersAsync"/>: the records this node holds — its own for what
    /// it provides — then an iterative GET_PROVIDERS lookup), up to <c>num-providers</c> (20), once the node has joined the
    /// DHT through its bootstrap peers.
    /// </summary>
    private async Task FindProvidersAsync(HttpContext context)
    {
        if (!TryArg(context, out var cid))
        {
            await Error("invalid CID").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var max = DefaultProviders;
        if (context.Request.Query.TryGetValue("num-providers", out var n) && (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out max) || max < 1))
        {
            await Error("num-providers must be a positive integer").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        // A lookup before the node has joined the DHT would ask an empty routing table.
        await _joined.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        var providers = await _ipfs.Dht.FindProvidersAsync(cid!, max, context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = "application/json";
        foreach (var p in providers)
        {
            var addrs = new JsonArray([.. p.Addresses.Select(a => JsonValue.Create(Bare(a)))]);
            var line = new JsonObject
            {
                ["Extra"] = "",
                ["ID"] = "",
                ["Responses"] = new JsonArray(new JsonObject { ["Addrs"] = addrs, ["ID"] = p.Peer.ToString() }),
                ["Type"] = ProviderEvent,
            };
            await context.Response.WriteAsync(line.ToJsonString() + "\n", context.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>A TCP multiaddr without its <c>/p2p/</c> part (kubo lists the peer id beside it).</summary>
    private static string Bare(Multiaddr address) => address.TryGetTcpEndPoint(out var endPoint) ? Multiaddr.FromTcp(endPoint!).ToString() : address.ToString();

    /// <summary><c>swarm/peers</c>: the libp2p connections open now (kubo's <c>{"Peers": [{"Addr", "Peer", …}]}</c>).</summary>
    private IResult SwarmPeers()
    {
        var peers = new JsonArray();
        foreach (var c in _ipfs.Host.Connections.OrderBy(c => c.RemotePeer.ToString(), StringComparer.Ordinal))
        {
            peers.Add((JsonNode)new JsonObject
            {
                ["Addr"] = Bare(c.RemoteAddress),
                ["Peer"] = c.RemotePeer.ToString(),
                ["Latency"] = "",
                ["Muxer"] = "",
                ["Streams"] = null,
            });
        }

        return KuboResult(new JsonObject { ["Peers"] = peers });
    }

    /// <summary><c>swarm/connect</c>: dials each <c>arg</c> (a <c>/ip4|ip6/…/tcp/…/p2p/…</c> multiaddr), as kubo answers it.</summary>
    private async Task SwarmConnectAsync(HttpContext context)
    {
        var strings = new JsonArray();
        foreach (var arg in context.Request.Query["arg"])
        {
            if (Multiaddr.TryParse(arg ?? "", out var address) != Libp2pError.None || address!.PeerId is null || !address.TryGetTcpEndPoint(out _))
            {
                await Error($"swarm/connect: '{arg}' is not a /ip4|ip6/…/tcp/…/p2p/… multiaddr").ExecuteAsync(context).ConfigureAwait(false);
                return;
            }

            try
            {
                var connection = await _ipfs.Host.DialAsync(address, context.RequestAborted).ConfigureAwait(false);
                strings.Add((JsonNode)JsonValue.Create($"connect {connection.RemotePeer} success"));
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or Libp2pProtocolException or TimeoutException)
            {
                _log.LogDebug("swarm/connect {Address}: {Message}", address, ex.Message);
                await Error($"connect {address.PeerId} failure: {ex.Message}").ExecuteAsync(context).ConfigureAwait(false);
                return;
            }
        }

        if (strings.Count == 0)
        {
            await Error("swarm/connect: argument \"address\" is required").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        await KuboResult(new JsonObject { ["Strings"] = strings }).ExecuteAsync(context).ConfigureAwait(false);
    }
}
