using System.CommandLine;
using Peerway.Cli;

// Exit codes (the CLI contract): 0 success, 1 runtime failure, 2 usage error. Errors are one line on stderr.
var root = new RootCommand("Peerway: peer-to-peer networking over Mainline DHT, BitTorrent, IPFS content addressing and ICE.");
foreach (var command in CommandCatalog.All())
{
    root.Subcommands.Add(command);
}

return await CliRunner.RunAsync(root, args);
