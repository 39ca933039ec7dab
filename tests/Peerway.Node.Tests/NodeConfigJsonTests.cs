using Microsoft.Extensions.Logging;
using Peerway.Node.Daemon;
using Peerway.TestSupport;

namespace Peerway.Node.Tests;

/// <summary>
/// The config file is read by generated code (Native AOT): a key left out keeps its default (the reason the reader was
/// reflection-based before: a generator that sets every init-only property would reset it), enums by name, unknown keys
/// and bad values refused.
/// </summary>
public sealed class NodeConfigJsonTests : IDisposable
{
    private readonly TempDirectory _temp = new("pw-nodecfg");

    public void Dispose() => _temp.Dispose();

    private NodeConfig Load(string json)
    {
        var file = _temp.Combine("node.json");
        File.WriteAllText(file, json);
        return NodeConfig.Load(file);
    }

    [Fact]
    public void Keys_left_out_keep_their_defaults()
    {
        var defaults = new NodeConfig();
        var config = Load("""{"rpc": "127.0.0.1:19091", "turn-realm": "lab"}""");
        Assert.Equal("127.0.0.1:19091", config.Rpc);
        Assert.Equal("lab", config.TurnRealm);
        Assert.Equal(defaults.Api, config.Api);
        Assert.Equal(defaults.Data, config.Data);
        Assert.Equal(6881, config.DhtPort);
        Assert.Equal(51413, config.PeerPort);
        Assert.True(config.UtpEnabled);
        Assert.Equal(LogLevel.Warning, config.LogLevel);
        Assert.Equal("simple", config.LogFormat);
        Assert.Equal(48L * 1024 * 1024, config.RpcMaxBody);
        Assert.Equal(4, config.RpcMaxConcurrent);
        Assert.Empty(config.DhtBootstrap);
        Assert.Empty(config.ApiAuthorizations);
        Assert.Null(config.RpcUsername);
    }

    [Fact]
    public void Every_kind_of_value_is_read()
    {
        var config = Load("""
            // comments and trailing commas, as transmission's settings.json is often edited by hand
            {
              "utp-enabled": false, "dht-port": 7000, "rpc-max-body": 1024, "log-level": "Debug",
              "logging": {"Peerway.Torrent": "Trace"}, "dht-bootstrap": ["127.0.0.1:6881"],
              "api-authorizations": {"alice": {"auth-secret": "basic:a:b"}},
              "turn-users": {"u": "p"},
            }
            """);
        Assert.False(config.UtpEnabled);
        Assert.Equal(7000, config.DhtPort);
        Assert.Equal(1024, config.RpcMaxBody);
        Assert.Equal(LogLevel.Debug, config.LogLevel);
        Assert.Equal(LogLevel.Trace, config.Logging["Peerway.Torrent"]);
        Assert.Equal(["127.0.0.1:6881"], config.DhtBootstrap);
        Assert.Equal("basic:a:b", config.ApiAuthorizations["alice"].AuthSecret);
        Assert.Equal(["/api/v0"], config.ApiAuthorizations["alice"].AllowedPaths); // its own default, kept
        Assert.Equal("p", config.TurnUsers["u"]);
    }

    [Theory]
    [InlineData("""{"rpc-port": 9091}""")]         // a typo: unknown keys are errors
    [InlineData("""{"log-level": "Loud"}""")]      // not a level
    [InlineData("""{"dht-port": "x"}""")]          // wrong type
    [InlineData("""{"rpc": """)]                   // truncated
    public void A_bad_file_is_a_clear_error(string json) =>
        Assert.Throws<ArgumentException>(() => Load(json));
}
