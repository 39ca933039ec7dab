using System.Net;
using System.Net.WebSockets;
using System.Text;
using FsCheck;
using FsCheck.Xunit;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core;
using Peerway.Node;
using Peerway.Torrent.Trackers;

namespace Peerway.Node.Tests;

/// <summary>The WebSocket tracker protocol (WebTorrent's): codec vectors, and our client against our server.</summary>
public sealed class WebSocketTrackerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private static readonly RtcSessionDescription Sdp = new("offer", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n");

    [Fact]
    public void Decodes_an_announce_as_bittorrent_tracker_sends_it()
    {
        // bittorrent-tracker's client: JSON.stringify of binary strings (bytes 0x80-0xFF as UTF-8 characters, control
        // characters as \u escapes), numwant equal to the number of offers.
        const string json = """{"numwant":1,"uploaded":0,"downloaded":0,"left":1048576,"event":"started","action":"announce","info_hash":"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000fÿþýü","peer_id":"-WW0208-abcdefghijkl","offers":[{"offer":{"type":"offer","sdp":"v=0\r\n"},"offer_id":"ÿÿÿÿÿÿÿÿÿÿ0123456789"}]}""";
        Assert.True(WebSocketTrackerCodec.TryDecode(Encoding.UTF8.GetBytes(json), out var m, out var error), error.ToString());
        var hash = new byte[20];
        for (var i = 0; i < 16; i++) hash[i] = (byte)i;
        hash[16] = 0xFF;
        hash[17] = 0xFE;
        hash[18] = 0xFD;
        hash[19] = 0xFC;
        Assert.Equal(new NodeId(hash), m!.InfoHash);
        Assert.Equal(new NodeId("-WW0208-abcdefghijkl"u8), m.PeerId);
        Assert.Equal(AnnounceEvent.Started, m.Event);
        Assert.Equal(1_048_576L, m.Left);
        var offer = Assert.Single(m.Offers);
        Assert.Equal("v=0\r\n", offer.Offer.Sdp);
        Assert.Equal(0xFF, offer.OfferId.ToArray()[0]);
        Assert.Equal((byte)'9', offer.OfferId.ToArray()[19]);
    }

    [Fact]
    public void Round_trips_announces_relays_and_scrapes()
    {
        var hash = NodeId.Random();
        var messages = new[]
        {
            new WebSocketTrackerMessage { InfoHash = hash, PeerId = NodeId.Random(), Event = AnnounceEvent.Completed, Left = 0, Uploaded = 5, Downloaded = 7, NumWant = 2,
                Offers = [new WebSocketOffer(NodeId.Random(), Sdp), new WebSocketOffer(NodeId.Random(), Sdp with { Sdp = "v=0\r\na=x\r\n" })] },
            new WebSocketTrackerMessage { InfoHash = hash, PeerId = NodeId.Random(), ToPeerId = NodeId.Random(), OfferId = NodeId.Random(), Answer = Sdp with { Type = "answer" } },
            new WebSocketTrackerMessage { InfoHash = hash, Interval = 120, Complete = 3, Incomplete = 4 },
            new WebSocketTrackerMessage { InfoHash = hash, Failure = "nope" },
            new WebSocketTrackerMessage { Action = WebSocketTrackerAction.Scrape, ScrapeHashes = [hash, NodeId.Random()] },
            new WebSocketTrackerMessage { Action = WebSocketTrackerAction.Scrape, Files = [new WebSocketScrapeFile(hash, 1, 2, 3)] },
        };
        foreach (var m in messages)
        {
            Assert.True(WebSocketTrackerCodec.TryDecode(WebSocketTrackerCodec.Encode(m), out var back, out var error), error.ToString());
            Assert.Equal(m.InfoHash, back!.InfoHash);
            Assert.Equal(m.PeerId, back.PeerId);
            Assert.Equal(m.Event, back.Event);
            Assert.Equal((m.Left, m.Uploaded, m.Downloaded, m.NumWant), (back.Left, back.Uploaded, back.Downloaded, back.NumWant));
            Assert.Equal(m.Offers, back.Offers);
            Assert.Equal((m.Answer, m.OfferId, m.ToPeerId), (back.Answer, back.OfferId, back.ToPeerId));
            Assert.Equal((m.Interval, m.Complete, m.Incomplete, m.Failure), (back.Interval, back.Complete, back.Incomplete, back.Failure));
            Assert.Equal(m.ScrapeHashes, back.ScrapeHashes);
            Assert.Equal(m.Files, back.Files);
        }
    }

    [Theory]
    [InlineData("not json", WebSocketTrackerError.MalformedJson)]
    [InlineData("[1,2]", WebSocketTrackerError.NotAnObject)]
    [InlineData("""{"action":"connect"}""", WebSocketTrackerError.UnknownAction)]
    [InlineData("""{"action":"announce","info_hash":"short"}""", WebSocketTrackerError.InvalidInfoHash)]
    [InlineData("""{"action":"announce","info_hash":"\u0100aaaaaaaaaaaaaaaaaaa"}""", WebSocketTrackerError.InvalidInfoHash)]
    [InlineData("""{"action":"announce","peer_id":12}""", WebSocketTrackerError.InvalidPeerId)]
    [InlineData("""{"action":"announce","offers":[{"offer":{"type":"offer","sdp":"v=0"}}]}""", WebSocketTrackerError.InvalidOffer)]
    [InlineData("""{"action":"announce","offers":[{"offer":{"type":"pranswer","sdp":"v=0"},"offer_id":"aaaaaaaaaaaaaaaaaaaa"}]}""", WebSocketTrackerError.InvalidOffer)]
    [InlineData("""{"action":"announce","answer":{"type":"answer","sdp":"v=0"}}""", WebSocketTrackerError.InvalidAnswer)]
    [InlineData("""{"action":"announce","a":[[[[[[[[[[1]]]]]]]]]]}""", WebSocketTrackerError.MalformedJson)]
    public void Rejects_bad_messages_with_a_typed_error(string json, WebSocketTrackerError expected)
    {
        Assert.False(WebSocketTrackerCodec.TryDecode(Encoding.UTF8.GetBytes(json), out _, out var error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Rejects_more_offers_than_the_limit_and_oversized_messages()
    {
        var many = new WebSocketTrackerMessage
        {
            InfoHash = NodeId.Random(),
            Offers = Enumerable.Range(0, WebSocketTrackerCodec.MaxOffers + 1).Select(_ => new WebSocketOffer(NodeId.Random(), Sdp)).ToList(),
        };
        Assert.False(WebSocketTrackerCodec.TryDecode(WebSocketTrackerCodec.Encode(many), out _, out var error));
        Assert.Equal(WebSocketTrackerError.TooManyOffers, error);
        Assert.False(WebSocketTrackerCodec.TryDecode(new byte[WebSocketTrackerCodec.MaxMessageLength + 1], out _, out error));
        Assert.Equal(WebSocketTrackerError.TooLarge, error);
    }

    [Property(MaxTest = 1000)]
    public bool Decoder_never_throws(byte[] data)
    {
        _ = WebSocketTrackerCodec.TryDecode(data ?? [], out _, out _);
        return true;
    }

    [Property(MaxTest = 300)]
    public bool Decoder_never_throws_on_json_like_input(NonNull<string> text)
    {
        _ = WebSocketTrackerCodec.TryDecode(Encoding.UTF8.GetBytes("{\"action\":\"announce\"," + text.Get), out _, out _);
        _ = WebSocketTrackerCodec.TryDecode(Encoding.UTF8.GetBytes("{\"action\":\"announce\",\"info_hash\":" + text.Get + "}"), out _, out _);
        return true;
    }

    private static TrackerServer StartServer(TimeProvider? time = null, TrackerServerOptions? options = null)
    {
        var server = new TrackerServer((options ?? new TrackerServerOptions()) with { ListenAddress = IPAddress.Loopback, Port = 0 }, time ?? TimeProvider.System);
        server.Start();
        return server;
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        // The server handles a close on its own task; poll with a deadline (no fixed sleep).
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached");
            await Task.Yield();
        }
    }

    private static Uri Url(TrackerServer server) => new($"ws://127.0.0.1:{server.Port}/announce");

    private static WebSocketTrackerMessage Announce(NodeId hash, NodeId peer, long left, params WebSocketOffer[] offers) =>
        new() { InfoHash = hash, PeerId = peer, Event = AnnounceEvent.Started, Left = left, Uploaded = 0, Downloaded = 0, NumWant = offers.Length, Offers = offers };

    private static TaskCompletionSource<WebSocketTrackerMessage> NextSignal(WebSocketTrackerClient client)
    {
        var tcs = new TaskCompletionSource<WebSocketTrackerMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Signal += m => tcs.TrySetResult(m);
        return tcs;
    }

    [Fact]
    public async Task Server_relays_offers_and_answers_between_two_clients_and_counts_them()
    {
        await using var server = StartServer();
        await using var a = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        await using var b = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        var hash = NodeId.Random();
        var (idA, idB) = (NodeId.Random(), NodeId.Random());
        var first = await a.AnnounceAsync(Announce(hash, idA, left: 0), Wait, TimeProvider.System, CancellationToken.None);
        Assert.True(first.Ok, first.Message);
        Assert.Equal(TimeSpan.FromSeconds(30), first.Response!.Interval);
        Assert.Equal((1, 0), (first.Response.Seeders, first.Response.Leechers));

        // B's offer reaches A, marked with B's peer id and the offer id.
        var offerAtA = NextSignal(a);
        var offerId = NodeId.Random();
        var second = await b.AnnounceAsync(Announce(hash, idB, 100, new WebSocketOffer(offerId, Sdp)), Wait, TimeProvider.System, CancellationToken.None);
        Assert.Equal((1, 1), (second.Response!.Seeders, second.Response.Leechers));
        var relayed = await offerAtA.Task.WaitAsync(Wait);
        Assert.Equal((hash, idB, offerId), (relayed.InfoHash, relayed.PeerId, relayed.OfferId));
        Assert.Equal(Sdp, relayed.Offer);

        // A's answer to a made-up offer id is not relayed; its answer to B's offer is, once.
        var answerAtB = NextSignal(b);
        var answer = new RtcSessionDescription("answer", "v=0\r\na=answer\r\n");
        await a.SendAsync(new WebSocketTrackerMessage { InfoHash = hash, PeerId = idA, ToPeerId = idB, OfferId = NodeId.Random(), Answer = answer with { Sdp = "forged" } }, CancellationToken.None);
        await a.SendAsync(new WebSocketTrackerMessage { InfoHash = hash, PeerId = idA, ToPeerId = idB, OfferId = offerId, Answer = answer }, CancellationToken.None);
        var relayedAnswer = await answerAtB.Task.WaitAsync(Wait);
        Assert.Equal((hash, idA, offerId, answer), (relayedAnswer.InfoHash, relayedAnswer.PeerId, relayedAnswer.OfferId, relayedAnswer.Answer));

        var (files, error) = await b.ScrapeAsync([hash], Wait, TimeProvider.System, CancellationToken.None);
        Assert.Equal(TrackerError.None, error);
        Assert.Equal(new WebSocketScrapeFile(hash, 1, 1, 0), Assert.Single(files));
    }

    [Fact]
    public async Task Disposing_between_two_receives_ends_the_client_cleanly()
    {
        // `peerway get` crashed on exit (ObjectDisposedException out of DisposeAsync) when disposal came while the receive
        // loop was between two receives: ClientWebSocket.Abort disposes the socket and the next ReceiveAsync throws
        // that. Disposing from a Signal handler (on the receive loop) puts disposal exactly there, every time.
        await using var server = StartServer();
        var a = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        await using var b = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        var hash = NodeId.Random();
        Assert.True((await a.AnnounceAsync(Announce(hash, NodeId.Random(), 0), Wait, TimeProvider.System, CancellationToken.None)).Ok);
        var disposing = new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Signal += _ => disposing.TrySetResult(a.DisposeAsync().AsTask());
        await b.AnnounceAsync(Announce(hash, NodeId.Random(), 100, new WebSocketOffer(NodeId.Random(), Sdp)), Wait, TimeProvider.System, CancellationToken.None);
        await (await disposing.Task.WaitAsync(Wait)).WaitAsync(Wait);
        await a.Closed.WaitAsync(Wait);
        await a.DisposeAsync(); // a second disposal is a no-op
    }

    [Fact]
    public async Task A_closed_socket_leaves_the_swarm()
    {
        await using var server = StartServer();
        await using var a = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        var hash = NodeId.Random();
        await using (var b = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None))
        {
            Assert.True((await b.AnnounceAsync(Announce(hash, NodeId.Random(), 0), Wait, TimeProvider.System, CancellationToken.None)).Ok);
        }

        // B's socket is gone: once the server has seen it close, B is no longer counted.
        await UntilAsync(() => server.WebSocketConnections == 1);
        var seeders = (await a.AnnounceAsync(Announce(hash, NodeId.Random(), 5), Wait, TimeProvider.System, CancellationToken.None)).Response!.Seeders;
        Assert.Equal(0, seeders);
    }

    [Fact]
    public async Task Bad_json_closes_that_socket_and_nothing_else()
    {
        await using var server = StartServer();
        await using var good = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        var hash = NodeId.Random();
        Assert.True((await good.AnnounceAsync(Announce(hash, NodeId.Random(), 0), Wait, TimeProvider.System, CancellationToken.None)).Ok);

        using var bad = new ClientWebSocket();
        await bad.ConnectAsync(Url(server), CancellationToken.None);
        await bad.SendAsync("{\"action\":\"announce\",\"info_hash\":"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[1024];
        var r = await bad.ReceiveAsync(buffer.AsMemory(), CancellationToken.None).AsTask().WaitAsync(Wait);
        Assert.Equal(WebSocketMessageType.Close, r.MessageType);
        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, bad.CloseStatus);

        var again = await good.AnnounceAsync(Announce(hash, NodeId.Random(), 3), Wait, TimeProvider.System, CancellationToken.None);
        Assert.True(again.Ok, again.Message);
        Assert.Equal(1, again.Response!.Seeders);
    }

    [Fact]
    public async Task An_offer_flood_closes_the_flooding_socket()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        await using var server = StartServer(time, new TrackerServerOptions { MaxWebSocketMessagesPerSecond = 5 });
        await using var victim = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        var hash = NodeId.Random();
        Assert.True((await victim.AnnounceAsync(Announce(hash, NodeId.Random(), 0), Wait, time, CancellationToken.None)).Ok);
        var offersAtVictim = 0;
        victim.Signal += m => { if (m.Offer is not null) Interlocked.Increment(ref offersAtVictim); };

        await using var flooder = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        var flooderId = NodeId.Random();
        try
        {
            for (var i = 0; i < 10 && !flooder.Closed.IsCompleted; i++)
            {
                await flooder.SendAsync(Announce(hash, flooderId, 5, new WebSocketOffer(NodeId.Random(), Sdp)), CancellationToken.None);
            }
        }
        catch (WebSocketException)
        {
            // The server closed the flooder while it was still sending.
        }

        await flooder.Closed.WaitAsync(Wait);
        // At most the messages of one second's budget were relayed; the victim's socket still works.
        Assert.InRange(Volatile.Read(ref offersAtVictim), 0, 5);
        Assert.True((await victim.AnnounceAsync(Announce(hash, NodeId.Random(), 0), Wait, time, CancellationToken.None)).Ok);
    }

    [Fact]
    public async Task An_answer_after_the_offer_expired_is_dropped()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        await using var server = StartServer(time);
        await using var a = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        await using var b = await WebSocketTrackerClient.ConnectAsync(Url(server), null, null, CancellationToken.None);
        var hash = NodeId.Random();
        var (idA, idB) = (NodeId.Random(), NodeId.Random());
        await a.AnnounceAsync(Announce(hash, idA, 0), Wait, time, CancellationToken.None);
        var offerAtA = NextSignal(a);
        var (late, fresh) = (NodeId.Random(), NodeId.Random());
        await b.AnnounceAsync(Announce(hash, idB, 100, new WebSocketOffer(late, Sdp)), Wait, time, CancellationToken.None);
        await offerAtA.Task.WaitAsync(Wait);
        time.Advance(new TrackerServerOptions().OfferTimeout + TimeSpan.FromSeconds(1));

        var answers = new List<NodeId>();
        var fresher = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        b.Signal += m =>
        {
            if (m.Answer is null) return;
            lock (answers) answers.Add(m.OfferId!.Value);
            if (m.OfferId == fresh) fresher.TrySetResult();
        };
        var answer = new RtcSessionDescription("answer", "v=0\r\n");
        await a.SendAsync(new WebSocketTrackerMessage { InfoHash = hash, PeerId = idA, ToPeerId = idB, OfferId = late, Answer = answer }, CancellationToken.None);
        // A fresh offer, answered in time, arrives; the late answer, sent before it, never did.
        await b.AnnounceAsync(Announce(hash, idB, 100, new WebSocketOffer(fresh, Sdp)), Wait, time, CancellationToken.None);
        await a.SendAsync(new WebSocketTrackerMessage { InfoHash = hash, PeerId = idA, ToPeerId = idB, OfferId = fresh, Answer = answer }, CancellationToken.None);
        await fresher.Task.WaitAsync(Wait);
        lock (answers) Assert.Equal([fresh], answers);
    }
}
