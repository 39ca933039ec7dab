using System.Security.Cryptography;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

/// <summary>
/// The property a byte stream must have whatever the network does: what the receiver reads equals what the sender
/// wrote. Each seed builds a different world (loss, duplication, reordering by jitter, a path MTU that may drop mid
/// transfer, datagrams held up for seconds as on a loaded host, a slow reader that closes and opens the receive window,
/// small or large writes, Peerway's large packets or
/// libtorrent-sized ones) and moves a few hundred KiB through one uTP connection; the bytes are compared exactly, and
/// the first difference is reported with the seed that found it.
/// </summary>
public sealed class UtpStreamPropertyTests
{
    private sealed record Scenario(int Seed, double Loss, double Duplicates, int JitterMs, int? Mtu, int? MtuLater, bool Large, int ReceiveBuffer,
        int MaxWrite, int MaxRead, int ReaderPauseMs, int Length, double SpikeRate, int SpikeMs)
    {
        public static Scenario From(int seed)
        {
            var r = new Random(seed);
            int? mtu = r.Next(3) == 0 ? null : r.Next(2) == 0 ? 1500 : 9000;
            return new Scenario(
                seed,
                Loss: r.Next(4) == 0 ? 0 : r.NextDouble() * 0.08,
                Duplicates: r.Next(3) == 0 ? 0 : r.NextDouble() * 0.05,
                JitterMs: r.Next(0, 25),
                Mtu: mtu,
                // A route change: the path carries less from some point on (MTU black hole for packets grown past it).
                MtuLater: mtu is null || r.Next(2) == 0 ? null : 1500,
                Large: r.Next(2) == 0,
                ReceiveBuffer: r.Next(2) == 0 ? 4 * 1024 * 1024 : r.Next(16, 200) * 1024,
                MaxWrite: r.Next(2) == 0 ? 64 * 1024 : r.Next(1, 5000),
                MaxRead: r.Next(2) == 0 ? 64 * 1024 : r.Next(1, 3000),
                ReaderPauseMs: r.Next(3) == 0 ? r.Next(1, 30) : 0,
                Length: r.Next(64 * 1024, 768 * 1024),
                SpikeRate: r.Next(2) == 0 ? 0 : r.NextDouble() * 0.02,
                SpikeMs: r.Next(200, 3000));
        }
    }

    public static TheoryData<int> Seeds()
    {
        var seeds = new TheoryData<int>();
        for (var seed = 1; seed <= 64; seed++) seeds.Add(seed);
        return seeds;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void The_bytes_read_equal_the_bytes_written_whatever_the_network_does(int seed)
    {
        var s = Scenario.From(seed);
        var world = new UtpWorld(lossRate: s.Loss, duplicateRate: s.Duplicates, maxJitter: TimeSpan.FromMilliseconds(s.JitterMs), seed: seed, mtu: s.Mtu,
            spikeRate: s.SpikeRate, spike: TimeSpan.FromMilliseconds(s.SpikeMs));
        var options = new UtpOptions
        {
            LargePayload = s.Large ? 64_000 : 0,
            ReceiveBuffer = s.ReceiveBuffer,
            // Long enough for the worst world here (8 % loss, 25 ms jitter): the property is about the bytes.
            MaxResends = 12,
        };
        var data = RandomNumberGenerator.GetBytes(s.Length);
        var server = world.Transport(1, options);
        var client = world.Transport(2, options);
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var pauses = new Random(seed);
        var received = UtpWorld.RunInline(async () =>
        {
            await using var connection = (await listener.AcceptAsync(CancellationToken.None))!;
            var output = new MemoryStream();
            var buffer = new byte[s.MaxRead];
            int n;
            while ((n = await connection.Stream.ReadAsync(buffer.AsMemory(0, pauses.Next(1, s.MaxRead + 1)))) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, n));
                if (s.ReaderPauseMs > 0 && pauses.Next(4) == 0) await Task.Delay(TimeSpan.FromMilliseconds(pauses.Next(1, s.ReaderPauseMs + 1)), world.Time);
            }

            return output.ToArray();
        });
        var writes = new Random(seed + 1);
        var sent = UtpWorld.RunInline(async () =>
        {
            var connection = await client.ConnectAsync(server.LocalEndPoint, CancellationToken.None);
            await using (connection)
            {
                for (var offset = 0; offset < data.Length;)
                {
                    var n = Math.Min(data.Length - offset, writes.Next(1, s.MaxWrite + 1));
                    await connection.Stream.WriteAsync(data.AsMemory(offset, n));
                    offset += n;
                    if (s.MtuLater is { } later && offset >= data.Length / 3) world.PathMtu = later;
                }
            }

            return true;
        });
        world.Await(sent, TimeSpan.FromMinutes(30));
        var bytes = world.Await(received, TimeSpan.FromMinutes(30));
        var differs = FirstDifference(data, bytes);
        Assert.True(differs < 0, $"{s}: {bytes.Length} of {data.Length} bytes read, the first wrong one at {differs}");
        world.Dispose();
    }

    private static int FirstDifference(byte[] expected, byte[] actual)
    {
        var common = Math.Min(expected.Length, actual.Length);
        var at = expected.AsSpan(0, common).CommonPrefixLength(actual.AsSpan(0, common));
        return at < common || expected.Length != actual.Length ? at : -1;
    }
}
