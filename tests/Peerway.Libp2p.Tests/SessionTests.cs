using System.Security.Cryptography;
using Peerway.Libp2p.Noise;
using Peerway.Libp2p.Yamux;

namespace Peerway.Libp2p.Tests;

public sealed class SessionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Noise_xx_proves_each_sides_peer_id_and_carries_data_both_ways()
    {
        using var alice = PeerKey.Generate();
        using var bob = PeerKey.Generate();
        var pair = new DuplexPair();
        var a = NoiseHandshake.RunAsync(pair.A, alice, initiator: true, CancellationToken.None);
        var b = NoiseHandshake.RunAsync(pair.B, bob, initiator: false, CancellationToken.None);
        var ((sa, bobSeen), (sb, aliceSeen)) = (await a.WaitAsync(Bound), await b.WaitAsync(Bound));
        Assert.Equal(bob.Id, bobSeen);
        Assert.Equal(alice.Id, aliceSeen);

        // Larger than one Noise frame (65,519 bytes of plaintext), so it is split and reassembled.
        var data = RandomNumberGenerator.GetBytes(200_000);
        var write = sa.WriteAsync(data).AsTask();
        var got = new byte[data.Length];
        await sb.ReadExactlyAsync(got).AsTask().WaitAsync(Bound);
        await write;
        Assert.Equal(data, got);
        await sb.WriteAsync("pong"u8.ToArray());
        var pong = new byte[4];
        await sa.ReadExactlyAsync(pong).AsTask().WaitAsync(Bound);
        Assert.Equal("pong"u8.ToArray(), pong);
    }

    [Fact]
    public async Task A_payload_signed_by_another_identity_aborts_the_handshake()
    {
        using var real = PeerKey.Generate();
        using var other = PeerKey.Generate();
        // The payload binds identity to the static key: a signature over a different static key does not verify.
        var payload = NoiseHandshake.EncodePayload(real, RandomNumberGenerator.GetBytes(32));
        var ex = Assert.Throws<Libp2pProtocolException>(() => NoiseHandshake.VerifyPayload(payload, RandomNumberGenerator.GetBytes(32)));
        Assert.Equal(Libp2pError.BadSignature, ex.Error);
        Assert.Throws<Libp2pProtocolException>(() => NoiseHandshake.VerifyPayload([0x0a, 0x05, 1, 2], RandomNumberGenerator.GetBytes(32)));
        _ = other;
    }

    [Fact]
    public async Task A_tampered_transport_frame_ends_the_stream_with_an_error()
    {
        using var alice = PeerKey.Generate();
        using var bob = PeerKey.Generate();
        var pair = new DuplexPair();
        var tap = new TamperingStream(pair.A);
        var a = NoiseHandshake.RunAsync(tap, alice, true, CancellationToken.None);
        var b = NoiseHandshake.RunAsync(pair.B, bob, false, CancellationToken.None);
        var (sa, _) = await a.WaitAsync(Bound);
        var (sb, _) = await b.WaitAsync(Bound);
        tap.FlipNextWrite = true;
        await sa.WriteAsync("secret"u8.ToArray());
        var buffer = new byte[16];
        var ex = await Assert.ThrowsAsync<Libp2pProtocolException>(() => sb.ReadAsync(buffer).AsTask().WaitAsync(Bound));
        Assert.Equal(Libp2pError.BadHandshake, ex.Error);
    }

    [Fact]
    public async Task Yamux_carries_many_streams_and_a_slow_reader_holds_the_writer_at_the_window()
    {
        var pair = new DuplexPair();
        await using var client = new YamuxSession(pair.A, client: true);
        await using var server = new YamuxSession(pair.B, client: false);
        client.Start();
        server.Start();

        var s1 = await client.OpenStreamAsync(CancellationToken.None);
        var s2 = await client.OpenStreamAsync(CancellationToken.None);
        Assert.Equal(1u, s1.Id);
        Assert.Equal(3u, s2.Id);
        var r1 = (await server.AcceptStreamAsync(CancellationToken.None).AsTask().WaitAsync(Bound))!;
        var r2 = (await server.AcceptStreamAsync(CancellationToken.None).AsTask().WaitAsync(Bound))!;

        // 1 MiB on s1 while nobody reads r1: the writer stops at the 256 KiB window (back-pressure, nothing dropped).
        var data = RandomNumberGenerator.GetBytes(1 << 20);
        var write = s1.WriteAsync(data).AsTask();
        await s2.WriteAsync("other"u8.ToArray());
        var other = new byte[5];
        await r2.ReadExactlyAsync(other).AsTask().WaitAsync(Bound);
        Assert.Equal("other"u8.ToArray(), other);
        // Nothing of r1 has been read, so at most one window of the 1 MiB can have been sent.
        Assert.False(write.IsCompleted);

        var got = new byte[data.Length];
        await r1.ReadExactlyAsync(got).AsTask().WaitAsync(Bound);
        await write.WaitAsync(Bound);
        Assert.Equal(data, got);

        // FIN: the reader sees the end after the data.
        await s1.CloseWriteAsync(CancellationToken.None);
        Assert.Equal(0, await r1.ReadAsync(new byte[1]).AsTask().WaitAsync(Bound));
        var rtt = await client.PingAsync(TimeProvider.System, CancellationToken.None).WaitAsync(Bound);
        Assert.True(rtt >= TimeSpan.Zero);
    }

    [Fact]
    public async Task A_yamux_peer_that_sends_beyond_the_window_is_dropped()
    {
        var pair = new DuplexPair();
        await using var server = new YamuxSession(pair.B, client: false);
        server.Start();
        // A raw peer: open stream 1, then one data frame of 300 KiB (> 256 KiB window).
        var header = new byte[YamuxHeader.Size];
        new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.Syn, 1, 0).Write(header);
        await pair.A.WriteAsync(header);
        new YamuxHeader(YamuxType.Data, YamuxFlags.None, 1, 300 * 1024).Write(header);
        await pair.A.WriteAsync(header);
        await pair.A.FlushAsync();
        await server.Closed.WaitAsync(Bound);
        // It was told why: ACK for the stream, then go-away with "protocol error".
        var reply = new byte[2 * YamuxHeader.Size];
        await pair.A.ReadExactlyAsync(reply).AsTask().WaitAsync(Bound);
        Assert.Equal(Libp2pError.None, YamuxHeader.TryRead(reply.AsSpan(YamuxHeader.Size), out var goAway));
        Assert.Equal(YamuxType.GoAway, goAway.Type);
        Assert.Equal(1u, goAway.Length);
    }

    [Fact]
    public async Task A_yamux_window_doubles_for_a_reader_that_keeps_up_up_to_the_max_and_is_enforced()
    {
        var pair = new DuplexPair();
        await using var server = new YamuxSession(pair.B, client: false, new YamuxOptions { MaxStreamWindow = 1 << 20 });
        server.Start();
        var header = new byte[YamuxHeader.Size];
        new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.Syn, 1, 0).Write(header);
        await pair.A.WriteAsync(header);
        await pair.A.FlushAsync();
        var stream = (await server.AcceptStreamAsync(CancellationToken.None).AsTask().WaitAsync(Bound))!;
        var ack = await ReadHeaderAsync(pair.A);
        Assert.Equal((YamuxType.WindowUpdate, YamuxFlags.Ack, 1u, 0u), (ack.Type, ack.Flags, ack.StreamId, ack.Length));

        // Each round fills the window the peer was granted; the reader drains it at once (it keeps up), so the update
        // re-opens what was consumed and doubles the window: 256 KiB → 512 KiB → 1 MiB, then no further (the maximum).
        var window = (uint)YamuxOptions.InitialWindow;
        foreach (var expected in new uint[] { 512 << 10, 1 << 20, 1 << 20 })
        {
            await SendDataAsync(pair.A, 1, (int)window);
            var got = new byte[window];
            await stream.ReadExactlyAsync(got).AsTask().WaitAsync(Bound);
            var update = await ReadHeaderAsync(pair.A);
            Assert.Equal((YamuxType.WindowUpdate, 1u), (update.Type, update.StreamId));
            Assert.Equal(expected, update.Length);
            Assert.Equal(expected, stream.ReceiveWindowSize);
            window = update.Length;
        }

        Assert.Equal((1 << 20) - YamuxOptions.InitialWindow, server.WindowGrowth);
        // The grown window is a limit all the same: one byte past it is a protocol error (go-away 1).
        new YamuxHeader(YamuxType.Data, YamuxFlags.None, 1, window + 1).Write(header);
        await pair.A.WriteAsync(header);
        await pair.A.FlushAsync();
        await server.Closed.WaitAsync(Bound);
        var goAway = await ReadHeaderAsync(pair.A);
        Assert.Equal((YamuxType.GoAway, 1u), (goAway.Type, goAway.Length));
    }

    [Fact]
    public async Task Yamux_window_growth_stays_within_the_sessions_budget_and_is_returned_when_a_stream_ends()
    {
        var pair = new DuplexPair();
        // Budget: half of the 1 MiB buffer bound, 512 KiB of growth for all streams together.
        var options = new YamuxOptions { MaxBufferedBytes = 1 << 20 };
        await using var client = new YamuxSession(pair.A, client: true);
        await using var server = new YamuxSession(pair.B, client: false, options);
        client.Start();
        server.Start();
        var streams = new List<(YamuxStream Out, YamuxStream In)>();
        for (var i = 0; i < 3; i++)
        {
            var s = await client.OpenStreamAsync(CancellationToken.None);
            var r = (await server.AcceptStreamAsync(CancellationToken.None).AsTask().WaitAsync(Bound))!;
            streams.Add((s, r));
        }

        // Every reader keeps up; together they may not grow past the budget (the first ones take it).
        foreach (var (s, r) in streams)
        {
            var data = RandomNumberGenerator.GetBytes(4 << 20);
            var write = s.WriteAsync(data).AsTask();
            var got = new byte[data.Length];
            await r.ReadExactlyAsync(got).AsTask().WaitAsync(Bound);
            await write.WaitAsync(Bound);
            Assert.Equal(data, got);
        }

        Assert.Equal(512L << 10, server.WindowGrowth);
        Assert.Equal(512L << 10, streams.Sum(p => (long)p.In.ReceiveWindowSize - YamuxOptions.InitialWindow));
        Assert.Equal(YamuxOptions.InitialWindow, (int)streams[^1].In.ReceiveWindowSize);

        // A stream that ends (FIN both ways) gives its growth back.
        var (out0, in0) = streams[0];
        var held = (long)in0.ReceiveWindowSize - YamuxOptions.InitialWindow;
        Assert.True(held > 0);
        await out0.CloseWriteAsync(CancellationToken.None);
        Assert.Equal(0, await in0.ReadAsync(new byte[1]).AsTask().WaitAsync(Bound));
        await in0.CloseWriteAsync(CancellationToken.None);
        Assert.Equal((512L << 10) - held, server.WindowGrowth);
    }

    private static async Task<YamuxHeader> ReadHeaderAsync(Stream from)
    {
        var bytes = new byte[YamuxHeader.Size];
        await from.ReadExactlyAsync(bytes).AsTask().WaitAsync(Bound);
        Assert.Equal(Libp2pError.None, YamuxHeader.TryRead(bytes, out var header));
        return header;
    }

    private static async Task SendDataAsync(Stream to, uint streamId, int length)
    {
        var frame = new byte[YamuxHeader.Size + length];
        new YamuxHeader(YamuxType.Data, YamuxFlags.None, streamId, (uint)length).Write(frame);
        RandomNumberGenerator.Fill(frame.AsSpan(YamuxHeader.Size));
        await to.WriteAsync(frame);
        await to.FlushAsync();
    }

    /// <summary>Flips a bit in the next write's last byte (inside the ChaChaPoly tag).</summary>
    private sealed class TamperingStream(Stream inner) : Stream
    {
        public bool FlipNextWrite { get; set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!FlipNextWrite) return inner.WriteAsync(buffer, cancellationToken);
            FlipNextWrite = false;
            var copy = buffer.ToArray();
            copy[^1] ^= 1;
            return inner.WriteAsync(copy, cancellationToken);
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
