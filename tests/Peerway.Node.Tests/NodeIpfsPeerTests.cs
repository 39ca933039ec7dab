using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Node.Daemon;
using Peerway.Node.Ipfs;

namespace Peerway.Node.Tests;

/// <summary>Issues 18/19: the libp2p/IPFS peer <c>peerway node</c> hosts — its identity, its config.</summary>
public sealed class NodeIpfsPeerTests
{
    [Fact]
    public async Task The_peer_identity_is_kept_in_the_data_dir_as_ipfs_serve_keeps_it_and_survives_a_restart()
    {
        var dir = Directory.CreateTempSubdirectory("pw-node-ipfs-").FullName;
        string first;
        await using (var node = await NodeDaemon.StartAsync(NodeConfig.Loopback(dir), NullLoggerFactory.Instance, CancellationToken.None))
        {
            first = node.Ipfs.Host.PeerId.ToString();
            Assert.StartsWith("12D3KooW", first, StringComparison.Ordinal);
            Assert.StartsWith("/ip4/127.0.0.1/tcp/", node.SwarmAddress, StringComparison.Ordinal);
            Assert.EndsWith($"/p2p/{first}", node.SwarmAddress, StringComparison.Ordinal);
        }

        // The key file `peerway ipfs serve --repo DATA/repo` reads: the same identity.
        using (var key = IpfsPeer.LoadOrCreateKey(Path.Combine(dir, "repo")))
        {
            Assert.Equal(first, key.Id.ToString());
        }

        await using (var again = await NodeDaemon.StartAsync(NodeConfig.Loopback(dir), NullLoggerFactory.Instance, CancellationToken.None))
        {
            Assert.Equal(first, again.Ipfs.Host.PeerId.ToString());
        }

        Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData("127.0.0.1", null)]
    [InlineData("127.0.0.1:0", "/ip4/127.0.0.1/tcp/4001")]
    [InlineData("127.0.0.1:0", "not a multiaddr")]
    public void A_bad_swarm_address_or_bootstrap_peer_is_a_one_line_config_error(string swarm, string? bootstrap)
    {
        var config = NodeConfig.Loopback("/tmp/unused") with { Swarm = swarm, IpfsBootstrap = bootstrap is null ? [] : [bootstrap] };
        var error = Assert.Throws<ArgumentException>(config.Validate);
        Assert.Contains(bootstrap is null ? "swarm" : "ipfs-bootstrap", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }
}
