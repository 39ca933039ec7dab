using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>MSE/PE between whole engines over loopback TCP, per encryption policy.</summary>
public sealed class EncryptedSwarmTests() : LoopbackSwarmTests("pw-mse-")
{
    private Task<(TorrentMetainfo Meta, string Source, byte[] Content)> Content() => MakeContent(1024 * 1024 + 333);

    private Task<TorrentSession> Start(TorrentMetainfo meta, string dir, bool source, EncryptionPolicy policy) =>
        Start(meta, meta.Info, dir, source, Loopback with { Encryption = policy });

    /// <summary>Seeder and leecher with the given policies; returns the leecher's connection encryption when the seeder registered.</summary>
    private async Task<CryptoMethods> Download(EncryptionPolicy seeding, EncryptionPolicy leeching)
    {
        var (meta, src, content) = await Content();
        var seeder = await Start(meta, src, source: true, seeding);
        var leecher = await Start(meta, Path.Combine(Dir, "dl"), source: false, leeching);
        var method = new TaskCompletionSource<CryptoMethods>(TaskCreationOptions.RunContinuationsAsynchronously);
        leecher.PeerConnected += _ => method.TrySetResult(leecher.ConnectionEncryption().Single());
        leecher.AddPeers([new IPEndPoint(IPAddress.Loopback, seeder.ListenPort)]);
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(Dir, "dl", "payload.bin")));
        return await method.Task.WaitAsync(Deadline);
    }

    [Fact]
    public async Task Required_on_both_sides_the_whole_stream_is_RC4() =>
        Assert.Equal(CryptoMethods.Rc4, await Download(EncryptionPolicy.Require, EncryptionPolicy.Require));

    [Fact]
    public async Task Required_by_the_leecher_only_still_gets_RC4() =>
        Assert.Equal(CryptoMethods.Rc4, await Download(EncryptionPolicy.Prefer, EncryptionPolicy.Require));

    [Fact]
    public async Task Prefer_on_both_sides_obfuscates_the_handshake_and_keeps_a_plaintext_payload() =>
        Assert.Equal(CryptoMethods.Plaintext, await Download(EncryptionPolicy.Prefer, EncryptionPolicy.Prefer));

    [Fact]
    public async Task Prefer_falls_back_to_plaintext_for_a_peer_with_encryption_off() =>
        Assert.Equal(CryptoMethods.None, await Download(EncryptionPolicy.Off, EncryptionPolicy.Prefer));

    [Fact]
    public async Task Plain_peer_and_garbage_handshakes_are_dropped_alone_when_encryption_is_required()
    {
        var (meta, src, content) = await Content();
        var seeder = await Start(meta, src, source: true, EncryptionPolicy.Require);
        var at = new IPEndPoint(IPAddress.Loopback, seeder.ListenPort);
        var plain = new byte[PeerWire.HandshakeLength];
        PeerWire.WriteHandshake(plain, new PeerHandshake(0, meta.InfoHash, new Core.NodeId(RandomNumberGenerator.GetBytes(20))));
        Assert.True(await IsClosedAfterSending(at, plain));
        // Not a public key followed by HASH('req1', S) within 512 bytes: the bounded scan gives up.
        Assert.True(await IsClosedAfterSending(at, RandomNumberGenerator.GetBytes(96 + 700)));
        var leecher = await Start(meta, Path.Combine(Dir, "dl"), source: false, EncryptionPolicy.Require);
        leecher.AddPeers([at]);
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(Dir, "dl", "payload.bin")));
    }

    /// <summary>Sends <paramref name="bytes"/> and reads until the peer closes; false if it answered with a plain handshake.</summary>
    private static async Task<bool> IsClosedAfterSending(IPEndPoint at, byte[] bytes)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(at);
        var stream = client.GetStream();
        await stream.WriteAsync(bytes);
        var buffer = new byte[4096];
        var received = new List<byte>();
        try
        {
            while (true)
            {
                var n = await stream.ReadAsync(buffer).AsTask().WaitAsync(Deadline);
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
