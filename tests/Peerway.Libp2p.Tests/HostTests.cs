using System.Net;
using Peerway.Libp2p.Protocols;
using Peerway.Net;

namespace Peerway.Libp2p.Tests;

/// <summary>Two hosts over real loopback TCP: the whole upgrade (multistream, Noise, Yamux), identify, ping, a handler.</summary>
public sealed class HostTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Two_hosts_connect_identify_each_other_ping_and_run_an_application_protocol()
    {
        using var ka = PeerKey.Generate();
        using var kb = PeerKey.Generate();
        await using var a = new Libp2pHost(ka, new TcpStreamTransport());
        await using var b = new Libp2pHost(kb, new TcpStreamTransport());
        b.Handle("/peerway/echo/1.0.0", async (stream, _, ct) =>
        {
            var buffer = new byte[1024];
            int n;
            while ((n = await stream.ReadAsync(buffer, ct)) > 0) await stream.WriteAsync(buffer.AsMemory(0, n), ct);
        });
        var bConnected = new TaskCompletionSource<Libp2pConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        b.Connected += c => bConnected.TrySetResult(c);
        await b.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        Assert.Equal(kb.Id, b.ListenAddresses[0].PeerId);

        await using var conn = await a.DialAsync(b.ListenAddresses[0], CancellationToken.None).WaitAsync(Bound);
        Assert.Equal(kb.Id, conn.RemotePeer);
        var theirs = await conn.Identify.WaitAsync(Bound);
        Assert.NotNull(theirs);
        Assert.Equal("peerway/0.1.0", theirs!.AgentVersion);
        Assert.Contains("/peerway/echo/1.0.0", theirs.Protocols);
        Assert.Contains(PingProtocol.ProtocolId, theirs.Protocols);
        var inbound = await bConnected.Task.WaitAsync(Bound);
        Assert.Equal(ka.Id, inbound.RemotePeer);

        Assert.True(await conn.PingAsync(TimeProvider.System, CancellationToken.None).WaitAsync(Bound) >= TimeSpan.Zero);
        await using var echo = await conn.OpenStreamAsync("/peerway/echo/1.0.0", CancellationToken.None);
        await echo.WriteAsync("hello libp2p"u8.ToArray());
        var got = new byte[12];
        await echo.ReadExactlyAsync(got).AsTask().WaitAsync(Bound);
        Assert.Equal("hello libp2p"u8.ToArray(), got);
        await Assert.ThrowsAsync<Libp2pProtocolException>(() => conn.OpenStreamAsync("/not/handled/1.0.0", CancellationToken.None));
    }

    [Fact]
    public async Task Dialling_an_address_with_the_wrong_peer_id_fails()
    {
        using var ka = PeerKey.Generate();
        using var kb = PeerKey.Generate();
        using var impostor = PeerKey.Generate();
        await using var a = new Libp2pHost(ka, new TcpStreamTransport());
        await using var b = new Libp2pHost(kb, new TcpStreamTransport());
        await b.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var wrong = b.ListenAddresses[0].WithPeer(impostor.Id);
        var ex = await Assert.ThrowsAsync<Libp2pProtocolException>(() => a.DialAsync(wrong, CancellationToken.None).WaitAsync(Bound));
        Assert.Equal(Libp2pError.BadPeerId, ex.Error);
    }
}
