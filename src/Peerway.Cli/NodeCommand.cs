using System.CommandLine;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Node.Daemon;

namespace Peerway.Cli;

/// <summary>
/// <c>peerway node</c>: the long-running daemon (DHT, torrents, content repository and gateway, Transmission RPC,
/// kubo-style API). Flags override the JSON config file; SIGINT/SIGTERM stop it gracefully (exit 0).
/// </summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "JSON config file (keys as the flags: data, rpc, api, gateway, dht-port, peer-port, rpc-username, rpc-password, rpc-max-concurrent, api-authorizations, turn, turn-users, turn-secret, turn-realm, turn-relay-ip, turn-allowed-peers, dht-bootstrap, swarm, ipfs-bootstrap, download-dir, allowed-download-roots, log-level, logging, log-format)." };
        var data = new Option<string?>("--data") { Description = "Data directory (torrents, settings, DHT state, content repository, downloads); default ~/.peerway-node." };
        var rpc = new Option<string?>("--rpc") { Description = "Transmission RPC listen address IP:PORT (default 127.0.0.1:9091)." };
        var api = new Option<string?>("--api") { Description = "kubo-style API listen address IP:PORT (default 127.0.0.1:5001)." };
        var gateway = new Option<string?>("--gateway") { Description = "IPFS trustless gateway listen address IP:PORT (default 127.0.0.1:8080)." };
        var swarm = new Option<string?>("--swarm") { Description = "IPFS peer (libp2p over TCP) listen address IP:PORT, kubo's Addresses.Swarm (default 127.0.0.1:4001)." };
        var dhtPort = new Option<int?>("--dht-port") { Description = "UDP port of the DHT node (default 6881; 0: any)." };
        var peerPort = new Option<int?>("--peer-port") { Description = "TCP port for BitTorrent peers (default 51413; 0: any)." };
        var turn = new Option<string?>("--turn") { Description = "Host the STUN/TURN server on this UDP+TCP address IP:PORT (credentials: turn-users or turn-secret in the config)." };
        var command = new Command("node", "Run the Peerway node: DHT, BitTorrent client, content repository, gateway and IPFS peer, driven over Transmission RPC and a kubo-style API.")
        {
            config, data, rpc, api, gateway, swarm, dhtPort, peerPort, turn,
        };
        command.SetAction(async (parse, ct) =>
        {
            NodeConfig settings;
            try
            {
                settings = parse.GetValue(config) is { } file ? NodeConfig.Load(file) : new NodeConfig();
                settings = settings with
                {
                    Data = parse.GetValue(data) ?? settings.Data,
                    Rpc = parse.GetValue(rpc) ?? settings.Rpc,
                    Api = parse.GetValue(api) ?? settings.Api,
                    Gateway = parse.GetValue(gateway) ?? settings.Gateway,
                    Swarm = parse.GetValue(swarm) ?? settings.Swarm,
                    DhtPort = parse.GetValue(dhtPort) ?? settings.DhtPort,
                    PeerPort = parse.GetValue(peerPort) ?? settings.PeerPort,
                    Turn = parse.GetValue(turn) ?? settings.Turn,
                };
                settings.Validate();
            }
            catch (ArgumentException ex)
            {
                throw new UsageException(ex.Message);
            }

            using var loggers = LoggerFactory.Create(settings.ConfigureLogging);
            NodeDaemon node;
            try
            {
                node = await NodeDaemon.StartAsync(settings, loggers, ct);
            }
            catch (SocketException ex)
            {
                throw new RuntimeFailureException($"cannot bind: {ex.Message}", ex);
            }
            catch (InvalidDataException ex)
            {
                throw new RuntimeFailureException(ex.Message, ex);
            }

            await using (node)
            {
                var output = parse.InvocationConfiguration.Output;
                await output.WriteLineAsync(node.Banner);
                await output.FlushAsync(ct);
                await ContentCommands.WaitForCancellationAsync(ct);
            }

            return CliRunner.Ok;
        });
        return command;
    }
}
