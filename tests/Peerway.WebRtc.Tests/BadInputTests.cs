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

    private static async Task<(RtcPeerConnection Offerer, RtcPeerConnection Answerer)> ConnectAsync(RtcConfiguration? answererConfig = null)
    {
        var offerer = new RtcPeerConnection(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new RtcConfiguration());
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
