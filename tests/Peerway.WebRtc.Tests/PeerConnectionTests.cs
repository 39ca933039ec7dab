using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.WebRtc.DataChannels;

namespace Peerway.WebRtc.Tests;

/// <summary>Two Peerway peer connections on loopback UDP: ICE, DTLS, SCTP and DCEP end to end.</summary>
public sealed class PeerConnectionTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    private static RtcPeerConnection NewPeer(RtcConfiguration? config = null) =>
        new(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, config ?? new RtcConfiguration());

    private static async Task<(RtcPeerConnection Offerer, RtcPeerConnection Answerer)> ConnectAsync()
    {
        var offerer = NewPeer();
        var answerer = NewPeer();
        var offer = await offerer.CreateOfferAsync();
        var answer = await answerer.AcceptOfferAsync(offer);
        offerer.SetAnswer(answer);
        await Task.WhenAll(offerer.Connected, answerer.Connected).WaitAsync(Limit);
        return (offerer, answerer);
    }

    [Fact]
    public async Task A_channel_opened_by_the_offerer_carries_text_and_binary_both_ways()
    {
        var (a, b) = await ConnectAsync();
        await using var _ = a;
        await using var __ = b;
        var channel = await a.CreateDataChannelAsync("chat", new RtcDataChannelInit { Protocol = "p1" });
        var remote = await b.AcceptDataChannelAsync().WaitAsync(Limit);
        Assert.NotNull(remote);
        Assert.Equal("chat", remote!.Label);
        Assert.Equal("p1", remote.Protocol);
        Assert.Equal(channel.Id, remote.Id);
        Assert.Equal(1, channel.Id % 2); // the offerer is the DTLS server here (answer is a=setup:active): odd ids

        await channel.SendAsync("hello");
        var m = await remote.ReceiveAsync().AsTask().WaitAsync(Limit);
        Assert.True(m!.Value.IsText);
        Assert.Equal("hello", m.Value.Text);

        var big = RandomNumberGenerator.GetBytes(256 * 1024);
        await remote.SendAsync(big);
        await remote.SendAsync(ReadOnlyMemory<byte>.Empty);
        var back = await channel.ReceiveAsync().AsTask().WaitAsync(Limit);
        Assert.False(back!.Value.IsText);
        Assert.Equal(big, back.Value.Data.ToArray());
        var empty = await channel.ReceiveAsync().AsTask().WaitAsync(Limit);
        Assert.Equal(0, empty!.Value.Data.Length);
    }

    [Fact]
    public async Task One_MiB_in_16_KiB_messages_arrives_intact_with_back_pressure()
    {
        var (a, b) = await ConnectAsync();
        await using var _ = a;
        await using var __ = b;
        var channel = await a.CreateDataChannelAsync("bulk");
        channel.BufferedAmountHighThreshold = 64 * 1024;
        var remote = (await b.AcceptDataChannelAsync().WaitAsync(Limit))!;
        var data = RandomNumberGenerator.GetBytes(1024 * 1024);
        var send = Task.Run(async () =>
        {
            for (var i = 0; i < data.Length; i += 16384) await channel.SendAsync(data.AsMemory(i, 16384));
        });
        using var received = new MemoryStream();
        while (received.Length < data.Length)
        {
            var m = await remote.ReceiveAsync().AsTask().WaitAsync(Limit);
            received.Write(m!.Value.Data.Span);
        }

        await send.WaitAsync(Limit);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received.ToArray()));
    }

    [Fact]
    public async Task Closing_a_channel_from_either_side_reaches_closed_on_both()
    {
        var (a, b) = await ConnectAsync();
        await using var _ = a;
        await using var __ = b;
        for (var side = 0; side < 2; side++)
        {
            var mine = await a.CreateDataChannelAsync("c" + side);
            var theirs = (await b.AcceptDataChannelAsync().WaitAsync(Limit))!;
            (side == 0 ? mine : theirs).Close();
            await Task.WhenAll(mine.Closed, theirs.Closed).WaitAsync(Limit);
            Assert.Equal(RtcDataChannelState.Closed, mine.State);
            Assert.Equal(RtcDataChannelState.Closed, theirs.State);
        }
    }

    [Fact]
    public async Task Dtls_negotiates_use_srtp_as_the_WebRTC_stacks_require()
    {
        // werift fails its DTLS transport (and never starts SCTP) without an SRTP profile, even for data channels; the
        // client offers AEAD_AES_128_GCM first (RFC 7714, profile 0x0007) and the server takes the client's first.
        var (offerer, answerer) = await ConnectAsync();
        await using var _ = offerer;
        await using var __ = answerer;
        Assert.Equal(0x0007, offerer.SrtpProfile);
        Assert.Equal(0x0007, answerer.SrtpProfile);
    }

    [Fact]
    public async Task A_wrong_fingerprint_refuses_the_connection()
    {
        var offerer = NewPeer();
        var answerer = NewPeer();
        await using var _ = offerer;
        await using var __ = answerer;
        var offer = await offerer.CreateOfferAsync();
        var answer = await answerer.AcceptOfferAsync(offer);

        // Flip one hex digit of the answer's fingerprint.
        var at = answer.IndexOf("a=fingerprint:sha-256 ", StringComparison.Ordinal) + "a=fingerprint:sha-256 ".Length;
        var tampered = answer[..at] + (answer[at] == 'A' ? 'B' : 'A') + answer[(at + 1)..];
        offerer.SetAnswer(tampered);
        await Assert.ThrowsAsync<InvalidOperationException>(() => offerer.Connected.WaitAsync(Limit));
        await Assert.ThrowsAnyAsync<Exception>(() => answerer.Connected.WaitAsync(Limit));
    }
}
