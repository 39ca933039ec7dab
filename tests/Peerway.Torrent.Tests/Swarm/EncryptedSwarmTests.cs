using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// MSE/PE between whole clients in a <see cref="SimulatedSwarm"/> (virtual network, memory storage, fake clock), per
/// encryption policy. The same handshakes over real TCP against libtorrent, transmission and aria2 are the interop tests'.
/// </summary>
public sealed class EncryptedSwarmTests
{
    private static (TorrentMetainfo Meta, byte[] Content) Content()
    {
        var content = RandomNumberGenerator.GetBytes((1024 * 1024) + 333);
        return (SimulatedSwarm.MakeTorrent(content, 32 * 1024), content);
    }

    private static TorrentClientOptions Policy(EncryptionPolicy policy) => new() { Encryption = policy };

    /// <summary>Seeder and leecher with the given policies; returns the leecher's connection encryption when the seeder registered.</summary>
    private static CryptoMethods Download(EncryptionPolicy seeding, EncryptionPolicy leeching)
    {
        CryptoMethods? method = null;
        SimulatedSwarm.OnDeepStack(() =>
        {
            using var swarm = new SimulatedSwarm();
            var (meta, content) = Content();
            var seeder = swarm.AddPeer(options: Policy(seeding));
            seeder.Seed(meta, content);
            var leecher = swarm.AddPeer(options: Policy(leeching));
            var download = leecher.Add(meta);
            var session = download.Session!;
            session.PeerConnected += _ => method ??= session.ConnectionEncryption().Single();
            session.AddPeers([seeder.EndPoint]);
            swarm.Wait(download.Completed, "the download did not complete");
            Assert.Equal(content, leecher.Content(meta));
        });
        return method ?? throw new InvalidOperationException("the leecher never registered the seeder");
    }

    [Fact]
    public void Required_on_both_sides_the_whole_stream_is_RC4() =>
        Assert.Equal(CryptoMethods.Rc4, Download(EncryptionPolicy.Require, EncryptionPolicy.Require));

    [Fact]
    public void Required_by_the_leecher_only_still_gets_RC4() =>
        Assert.Equal(CryptoMethods.Rc4, Download(EncryptionPolicy.Prefer, EncryptionPolicy.Require));

    [Fact]
    public void Prefer_on_both_sides_obfuscates_the_handshake_and_keeps_a_plaintext_payload() =>
        Assert.Equal(CryptoMethods.Plaintext, Download(EncryptionPolicy.Prefer, EncryptionPolicy.Prefer));

    [Fact]
    public void Prefer_falls_back_to_plaintext_for_a_peer_with_encryption_off() =>
        Assert.Equal(CryptoMethods.None, Download(EncryptionPolicy.Off, EncryptionPolicy.Prefer));

    [Fact]
    public void Plain_peer_and_garbage_handshakes_are_dropped_alone_when_encryption_is_required() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content();
        var seeder = swarm.AddPeer(options: Policy(EncryptionPolicy.Require));
        seeder.Seed(meta, content);
        var plain = new byte[PeerWire.HandshakeLength];
        PeerWire.WriteHandshake(plain, new PeerHandshake(0, meta.InfoHash, new Core.NodeId(RandomNumberGenerator.GetBytes(20))));
        var raw = swarm.Network.AddEndpoint();
        Assert.True(swarm.Run(() => IsClosedAfterSendingAsync(raw, seeder.EndPoint, plain)));
        // Not a public key followed by HASH('req1', S) within 512 bytes: the bounded scan gives up.
        Assert.True(swarm.Run(() => IsClosedAfterSendingAsync(raw, seeder.EndPoint, RandomNumberGenerator.GetBytes(96 + 700))));
        var leecher = swarm.AddPeer(options: Policy(EncryptionPolicy.Require));
        var download = leecher.Add(meta, new TorrentAddOptions { Peers = [seeder.EndPoint] });
        swarm.Wait(download.Completed, "the encrypted download did not complete");
        Assert.Equal(content, leecher.Content(meta));
    });

    /// <summary>Sends <paramref name="bytes"/> and reads until the peer closes; false if it answered with a plain handshake.</summary>
    private static async Task<bool> IsClosedAfterSendingAsync(VirtualStreamEndpoint from, IPEndPoint at, byte[] bytes)
    {
        await using var connection = await from.ConnectAsync(at, CancellationToken.None);
        var stream = connection.Stream;
        var received = new List<byte>();
        try
        {
            await stream.WriteAsync(bytes);
            var buffer = new byte[4096];
            while (true)
            {
                var n = await stream.ReadAsync(buffer);
                if (n == 0) break;
                received.AddRange(buffer.AsSpan(0, n).ToArray());
            }
        }
        catch (IOException)
        {
            // Reset: closed with our bytes unread.
        }

        return !PlainHandshake.IsHeader(received.ToArray());
    }
}
