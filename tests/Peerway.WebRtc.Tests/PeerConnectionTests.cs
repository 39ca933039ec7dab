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

    private static async Task<(RtcPeerConnection Offerer, RtcPeerConnection Answerer)> ConnectAsync(RtcConfiguration? config = null)
    {
        var offerer = NewPeer(config);
        var answerer = NewPeer(config);
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
    public async Task Timings_record_every_set_up_step_in_order_on_both_ends()
    {
        var (a, b) = await ConnectAsync();
        await using var _ = a;
        await using var __ = b;
        foreach (var t in new[] { a.Timings, b.Timings })
        {
            Assert.NotNull(t.Ice);
            DateTimeOffset[] steps = [t.Created, t.RemoteDescription!.Value, t.Ice!.Selected!.Value, t.DtlsConnected!.Value, t.SctpEstablished!.Value];
            Assert.Equal(steps.Order(), steps);
            Assert.NotNull(t.LocalDescription);
            Assert.NotNull(t.Ice.FirstCheckSent);
            Assert.NotNull(t.Ice.FirstPairSucceeded);
            Assert.Contains("dtls +", t.ToString(), StringComparison.Ordinal);
        }

        // The offerer described itself before it saw the answer; the answerer took the offer before it answered.
        Assert.True(a.Timings.LocalDescription <= a.Timings.RemoteDescription);
        Assert.True(b.Timings.RemoteDescription <= b.Timings.LocalDescription);
        Assert.NotNull(b.Timings.Ice!.FirstRequestReceived);
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

    /// <summary>
    /// <see cref="RtcDataChannel.BufferedAmount"/> counts what the application sent (W3C WebRTC, <c>bufferedAmount</c>),
    /// not DCEP's DATA_CHANNEL_OPEN, which is still unacknowledged when <c>CreateDataChannelAsync</c> returns.
    /// </summary>
    [Fact]
    public async Task A_new_channel_buffers_nothing_and_counts_only_what_the_application_sends()
    {
        var (a, b) = await ConnectAsync(new RtcConfiguration());
        await using var _ = a;
        await using var __ = b;
        var channel = await a.CreateDataChannelAsync("count");
        Assert.Equal(0, channel.BufferedAmount);
        await channel.SendAsync(new byte[100]);
        Assert.InRange(channel.BufferedAmount, 0, 100);
        var remote = (await b.AcceptDataChannelAsync().WaitAsync(Limit))!;
        Assert.Equal(100, (await remote.ReceiveAsync().AsTask().WaitAsync(Limit))!.Value.Data.Length);
        await channel.WaitForBufferedAmountLowAsync().WaitAsync(Limit);
        Assert.Equal(0, channel.BufferedAmount);
    }

    /// <summary>
    /// A reliable channel never drops (the per-channel queue used to drop beyond 4,096 unread messages): what the
    /// application has not read closes the SCTP receive window, so the sender's messages wait on its side
    /// (<see cref="RtcDataChannel.BufferedAmount"/>) and arrive, all and in order, when the reader catches up; then
    /// <see cref="RtcDataChannel.BufferedAmountLow"/> fires as in the browser.
    /// </summary>
    [Fact]
    public async Task A_reliable_channel_never_drops_for_a_slow_reader_and_the_sender_waits_on_the_window()
    {
        const int count = 10_000;
        const int size = 1024;
        const int window = 64 * 1024;
        var (a, b) = await ConnectAsync(new RtcConfiguration { Sctp = new() { ReceiveWindow = window, MaxMessageSize = 16 * 1024 }, MaxQueuedMessages = 16 });
        await using var _ = a;
        await using var __ = b;
        var channel = await a.CreateDataChannelAsync("slow");
        var remote = (await b.AcceptDataChannelAsync().WaitAsync(Limit))!;
        channel.BufferedAmountHighThreshold = long.MaxValue;
        var low = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.BufferedAmountLow += (_, _) => low.TrySetResult();
        for (var i = 0; i < count; i++)
        {
            var m = new byte[size];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(m, i);
            await channel.SendAsync(m);
        }

        // Nothing read yet: the receiver took at most its window (plus a packet), the rest waits at the sender.
        Assert.InRange(channel.BufferedAmount, ((long)count * size) - (2L * window) - 1200, (long)count * size);
        Assert.False(low.Task.IsCompleted);

        for (var i = 0; i < count; i++)
        {
            var m = await remote.ReceiveAsync().AsTask().WaitAsync(Limit);
            Assert.Equal(i, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(m!.Value.Data.Span));
        }

        await low.Task.WaitAsync(Limit);
        await channel.WaitForBufferedAmountLowAsync().WaitAsync(Limit);
        Assert.Equal(0, channel.BufferedAmount);
    }

    /// <summary>
    /// ICE-lite (RFC 8445 §2.5) with SDP's <c>a=ice-lite</c> (RFC 8839 §5.3): a lite answerer (the server case,
    /// <c>peerway rtc listen --ice-lite</c>) and a lite offerer each connect to a full Peerway agent, which controls.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_full_peer_connects_to_an_ice_lite_peer_and_controls(bool liteOffers)
    {
        var lite = new RtcConfiguration { IceLite = true };
        var offerer = NewPeer(liteOffers ? lite : null);
        var answerer = NewPeer(liteOffers ? null : lite);
        await using var _ = offerer;
        await using var __ = answerer;
        var offer = await offerer.CreateOfferAsync();
        var answer = await answerer.AcceptOfferAsync(offer);
        Assert.Equal(liteOffers, offer.Contains("a=ice-lite\r\n", StringComparison.Ordinal));
        Assert.Equal(!liteOffers, answer.Contains("a=ice-lite\r\n", StringComparison.Ordinal));
        offerer.SetAnswer(answer);
        await Task.WhenAll(offerer.Connected, answerer.Connected).WaitAsync(Limit);
        var (full, litePeer) = liteOffers ? (answerer, offerer) : (offerer, answerer);
        Assert.Equal(Peerway.Nat.Ice.IceRole.Controlling, full.Ice!.Role);
        Assert.Equal(Peerway.Nat.Ice.IceRole.Controlled, litePeer.Ice!.Role);

        var channel = await full.CreateDataChannelAsync("lite");
        var remote = (await litePeer.AcceptDataChannelAsync().WaitAsync(Limit))!;
        await channel.SendAsync("over a lite path");
        Assert.Equal("over a lite path", (await remote.ReceiveAsync().AsTask().WaitAsync(Limit))!.Value.Text);

        // Two lite ends cannot connect (nobody would check): refused with a typed error.
        var liteOffer = liteOffers ? offer : await NewLiteOfferAsync();
        await using var third = NewPeer(lite);
        var refused = await Assert.ThrowsAsync<SdpException>(() => third.AcceptOfferAsync(liteOffer));
        Assert.Equal(Peerway.WebRtc.Sdp.SdpError.BadSetup, refused.Error);
    }

    private static async Task<string> NewLiteOfferAsync()
    {
        await using var pc = NewPeer(new RtcConfiguration { IceLite = true });
        return await pc.CreateOfferAsync();
    }
}
