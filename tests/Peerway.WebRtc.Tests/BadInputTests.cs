using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.WebRtc.DataChannels;
using Peerway.WebRtc.Sctp;

namespace Peerway.WebRtc.Tests;

/// <summary>Hostile or broken peers are refused or dropped alone; the connection keeps serving.</summary>
public sealed class BadInputTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    private static async Task<(RtcPeerConnection Offerer, RtcPeerConnection Answerer)> ConnectAsync(RtcConfiguration? answererConfig = null, RtcConfiguration? offererConfig = null)
    {
        var offerer = new RtcPeerConnection(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, offererConfig ?? new RtcConfiguration());
        var answerer = new RtcPeerConnection(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, answererConfig ?? new RtcConfiguration());
        offerer.SetAnswer(await answerer.AcceptOfferAsync(await offerer.CreateOfferAsync()));
        await Task.WhenAll(offerer.Connected, answerer.Connected).WaitAsync(Limit);
        return (offerer, answerer);
    }

    [Fact]
    public async Task A_peer_opening_more_channels_than_allowed_gets_them_closed_and_the_rest_work()
    {
        var (a, b) = await ConnectAsync(new RtcConfiguration { MaxChannels = 4 });
        await using var _ = a;
        await using var __ = b;
        var channels = new List<RtcDataChannel>();
        for (var i = 0; i < 40; i++) channels.Add(await a.CreateDataChannelAsync("c" + i));

        // The answerer keeps four; the others are reset by it and reach "closed" at the offerer.
        var accepted = new List<RtcDataChannel>();
        for (var i = 0; i < 4; i++) accepted.Add((await b.AcceptDataChannelAsync().WaitAsync(Limit))!);
        await Task.WhenAll(channels.Skip(4).Select(c => c.Closed)).WaitAsync(Limit);
        Assert.All(channels.Take(4), c => Assert.Equal(RtcDataChannelState.Open, c.State));

        await channels[0].SendAsync("still here");
        Assert.Equal("still here", (await accepted[0].ReceiveAsync().AsTask().WaitAsync(Limit))!.Value.Text);
    }

    /// <summary>
    /// A peer opening 1,500 channels against the default limit (1,024 per connection): the first 1,024 open, every one
    /// beyond is refused by resetting its stream (it reaches "closed" at the opener), and the connection stays up.
    /// </summary>
    [Fact]
    public async Task A_peer_opening_thousands_of_channels_is_held_to_the_per_connection_limit()
    {
        // The opener's own limit is raised so that it can be the hostile peer.
        var (a, b) = await ConnectAsync(offererConfig: new RtcConfiguration { MaxChannels = 4096 });
        await using var _ = a;
        await using var __ = b;
        var limit = new RtcConfiguration().MaxChannels;
        var channels = new List<RtcDataChannel>();
        for (var i = 0; i < 1500; i++) channels.Add(await a.CreateDataChannelAsync("c" + i));

        await Task.WhenAll(channels.Skip(limit).Select(c => c.Closed)).WaitAsync(Limit * 4);
        var accepted = new List<RtcDataChannel>();
        while (accepted.Count < limit && await b.AcceptDataChannelAsync().WaitAsync(Limit) is { } c) accepted.Add(c);
        Assert.Equal(limit, accepted.Count);
        Assert.All(channels.Take(limit), c => Assert.Equal(RtcDataChannelState.Open, c.State));
        Assert.Equal(RtcConnectionState.Connected, b.State);

        // The connection still carries data on a channel within the limit.
        var last = channels[limit - 1];
        var remote = accepted.Single(c => c.Id == last.Id);
        await last.SendAsync("still here");
        Assert.Equal("still here", (await remote.ReceiveAsync().AsTask().WaitAsync(Limit))!.Value.Text);
    }

    /// <summary>
    /// A DTLS ClientHello flood at the answerer's socket while the handshake runs: the datagrams come from an address
    /// that is not the selected pair, so the ICE path never hands them to DTLS (and its queue is bounded anyway); the
    /// real peer still connects and the channel works.
    /// </summary>
    [Fact]
    public async Task A_client_hello_flood_during_the_handshake_does_not_keep_the_real_peer_out()
    {
        var offerer = new RtcPeerConnection(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new RtcConfiguration());
        var answerer = new RtcPeerConnection(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new RtcConfiguration());
        await using var _ = offerer;
        await using var __ = answerer;
        var answer = await answerer.AcceptOfferAsync(await offerer.CreateOfferAsync());
        var target = answerer.Ice!.LocalCandidates[0].Address;
        using var attacker = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
        using var stop = new CancellationTokenSource();
        var flood = Task.Run(() =>
        {
            // DTLS 1.2 handshake records (type 22, version FEFD, epoch 0) holding a ClientHello (msg type 1) header.
            var hello = new byte[180];
            var sent = 0;
            while (!stop.IsCancellationRequested && sent < 200_000)
            {
                RandomNumberGenerator.Fill(hello);
                hello[0] = 22;
                hello[1] = 0xFE;
                hello[2] = 0xFD;
                hello[3] = 0;
                hello[4] = 0;
                hello[13] = 1;
                attacker.Send(hello, target);
                sent++;
            }

            return sent;
        });
        offerer.SetAnswer(answer);
        await Task.WhenAll(offerer.Connected, answerer.Connected).WaitAsync(Limit);
        var channel = await offerer.CreateDataChannelAsync("x");
        var remote = (await answerer.AcceptDataChannelAsync().WaitAsync(Limit))!;
        await channel.SendAsync("through");
        Assert.Equal("through", (await remote.ReceiveAsync().AsTask().WaitAsync(Limit))!.Value.Text);
        await stop.CancelAsync();
        Assert.True(await flood > 0);
    }

    [Fact]
    public async Task A_datagram_flood_from_elsewhere_does_not_disturb_the_connection()
    {
        var (a, b) = await ConnectAsync();
        await using var _ = a;
        await using var __ = b;
        var channel = await a.CreateDataChannelAsync("x");
        var remote = (await b.AcceptDataChannelAsync().WaitAsync(Limit))!;

        // DTLS ClientHello-looking records (content type 22) and SCTP-looking junk at the answerer's socket from a
        // stranger: the ICE path passes only the selected pair's datagrams, and the DTLS queue is bounded anyway.
        var target = b.Ice!.LocalCandidates[0].Address;
        using var attacker = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
        var junk = new byte[200];
        for (var i = 0; i < 5000; i++)
        {
            RandomNumberGenerator.Fill(junk);
            junk[0] = 22;
            attacker.Send(junk, target);
        }

        var data = RandomNumberGenerator.GetBytes(200_000);
        await channel.SendAsync(data);
        Assert.Equal(data, (await remote.ReceiveAsync().AsTask().WaitAsync(Limit))!.Value.Data.ToArray());
    }

    [Fact]
    public async Task A_message_over_the_negotiated_size_is_refused_at_send()
    {
        var (a, b) = await ConnectAsync(new RtcConfiguration { Sctp = new SctpOptions { MaxMessageSize = 65536 } });
        await using var _ = a;
        await using var __ = b;
        Assert.Equal(65536, a.MaxMessageSize); // the answer's a=max-message-size caps the offerer
        var channel = await a.CreateDataChannelAsync("x");
        await Assert.ThrowsAsync<ArgumentException>(() => channel.SendAsync(new byte[65537]).AsTask());
        await channel.SendAsync(new byte[65536]);
    }
}
