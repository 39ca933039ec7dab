using System.Buffers;
using System.Security.Cryptography;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Peerway.Torrent.Encryption;

namespace Peerway.Torrent.Tests.Encryption;

public sealed class Rc4Tests
{
    // RFC 6229, "Test Vectors for the Stream Cipher RC4": keystream at offsets 0, 16 and 1024 (the offset MSE starts at).
    [Theory]
    [InlineData("0102030405", 0, "b2396305f03dc027ccc3524a0a1118a8")]
    [InlineData("0102030405", 16, "6982944f18fc82d589c403a47a0d0919")]
    [InlineData("0102030405", 240, "28cb1132c96ce286421dcaadb8b69eae")]
    [InlineData("0102030405", 256, "1cfcf62b03eddb641d77dfcf7f8d8c93")]
    [InlineData("0102030405", 1024, "30abbcc7c20b01609f23ee2d5f6bb7df")]
    [InlineData("0102030405", 4080, "068326a2118416d21f9d04b2cd1ca050")]
    [InlineData("0102030405", 4096, "ff25b58995996707e51fbdf08b34d875")]
    [InlineData("01020304050607", 0, "293f02d47f37c9b633f2af5285feb46b")]
    [InlineData("01020304050607", 240, "914f02531c9218810df60f67e338154c")]
    [InlineData("0102030405060708090a0b0c0d0e0f10", 0, "9ac7cc9a609d1ef7b2932899cde41b97")]
    [InlineData("0102030405060708090a0b0c0d0e0f10", 256, "d39d566bc6bce3010768151549f3873f")]
    [InlineData("0102030405060708090a0b0c0d0e0f10", 1024, "bdf0324e6083dcc6d3cedd3ca8c53c16")]
    [InlineData("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", 0, "eaa6bd25880bf93d3f5d1e4ca2611d91")]
    [InlineData("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", 256, "02e1e7056b0f623900496422943e97b6")]
    public void Keystream_matches_RFC_6229(string key, int offset, string expected)
    {
        var rc4 = new Rc4(Convert.FromHexString(key));
        rc4.Skip(offset);
        var block = new byte[16];
        rc4.Transform(block);
        Assert.Equal(expected, Convert.ToHexStringLower(block));
    }

    [Theory]
    [InlineData("Key", "Plaintext", "bbf316e8d940af0ad3")]
    [InlineData("Wiki", "pedia", "1021bf0420")]
    [InlineData("Secret", "Attack at dawn", "45a01f645fc35b383552544b9bf5")]
    public void Encrypts_the_classic_vectors(string key, string plain, string expected)
    {
        var rc4 = new Rc4(System.Text.Encoding.ASCII.GetBytes(key));
        var data = System.Text.Encoding.ASCII.GetBytes(plain);
        var output = new byte[data.Length];
        rc4.Transform(data, output);
        Assert.Equal(expected, Convert.ToHexStringLower(output));
    }

    [Fact]
    public void ForMse_discards_the_first_1024_bytes()
    {
        var key = Convert.FromHexString("0102030405");
        var block = new byte[16];
        Rc4.ForMse(key).Transform(block);
        Assert.Equal("30abbcc7c20b01609f23ee2d5f6bb7df", Convert.ToHexStringLower(block));
    }

    [Fact]
    public void Transform_does_not_allocate()
    {
        var rc4 = Rc4.ForMse(new byte[20]);
        var data = new byte[64 * 1024];
        rc4.Transform(data);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 16; i++) rc4.Transform(data);
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }

    [Property(MaxTest = 200)]
    public bool Split_transforms_equal_one_transform(byte[] data, int split)
    {
        data ??= [];
        var at = data.Length == 0 ? 0 : (int)((uint)split % (uint)data.Length);
        var whole = (byte[])data.Clone();
        Rc4.ForMse("k"u8).Transform(whole);
        var parts = (byte[])data.Clone();
        var rc4 = Rc4.ForMse("k"u8);
        rc4.Transform(parts.AsSpan(0, at));
        rc4.Transform(parts.AsSpan(at));
        return whole.AsSpan().SequenceEqual(parts);
    }

    // The fast transform (eight keystream bytes per 64-bit XOR, native-width indices) against the textbook algorithm,
    // byte by byte: any key length, any skip, the data cut into pieces of any sizes (so every alignment of the 8-byte
    // loop and its byte tail, and i wrapping past 255 inside a word, are covered), in place and into another buffer.
    [Property(MaxTest = 300)]
    public bool Transform_equals_the_textbook_algorithm(NonEmptyArray<byte> key, byte[] data, byte skip, int[] cuts, bool inPlace)
    {
        data ??= [];
        var k = key.Get.Length > 256 ? key.Get[..256] : key.Get;
        var expected = TextbookRc4(k, skip, data);
        var fast = new Rc4(k);
        fast.Skip(skip);
        var source = (byte[])data.Clone();
        var output = inPlace ? source : new byte[data.Length];
        var at = 0;
        foreach (var cut in (cuts ?? []).Append(int.MaxValue))
        {
            var n = Math.Min(data.Length - at, cut == int.MaxValue ? int.MaxValue : (int)((uint)cut % 70));
            fast.Transform(source.AsSpan(at, n), output.AsSpan(at, n));
            at += n;
        }

        return output.AsSpan().SequenceEqual(expected) && (inPlace || source.AsSpan().SequenceEqual(data));
    }

    [Fact]
    public void A_long_transform_equals_the_textbook_algorithm()
    {
        var key = RandomNumberGenerator.GetBytes(20);
        var data = RandomNumberGenerator.GetBytes(1 << 20);
        var expected = TextbookRc4(key, 1024, data);
        Rc4.ForMse(key).Transform(data);
        Assert.Equal(expected, data);
    }

    /// <summary>RC4 as Schneier's Applied Cryptography and RFC 6229 §1 describe it, one byte at a time, after dropping <paramref name="skip"/> bytes.</summary>
    private static byte[] TextbookRc4(byte[] key, int skip, byte[] data)
    {
        var s = new byte[256];
        for (var n = 0; n < 256; n++) s[n] = (byte)n;
        for (int n = 0, j = 0; n < 256; n++)
        {
            j = (j + s[n] + key[n % key.Length]) % 256;
            (s[n], s[j]) = (s[j], s[n]);
        }

        var output = new byte[data.Length];
        for (int n = -skip, i = 0, j = 0; n < data.Length; n++)
        {
            i = (i + 1) % 256;
            j = (j + s[i]) % 256;
            (s[i], s[j]) = (s[j], s[i]);
            if (n >= 0) output[n] = (byte)(data[n] ^ s[(s[i] + s[j]) % 256]);
        }

        return output;
    }
}

public sealed class MseDiffieHellmanTests
{
    private static readonly byte[] Prime = Convert.FromHexString(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563");

    [Fact]
    public void Both_sides_derive_the_same_96_byte_secret()
    {
        var xa = MseDiffieHellman.PrivateKey(RandomNumberGenerator.GetBytes(20));
        var xb = MseDiffieHellman.PrivateKey(RandomNumberGenerator.GetBytes(20));
        var ya = new byte[96];
        var yb = new byte[96];
        MseDiffieHellman.PublicKey(xa, ya);
        MseDiffieHellman.PublicKey(xb, yb);
        var sa = new byte[96];
        var sb = new byte[96];
        Assert.True(MseDiffieHellman.TrySharedSecret(yb, xa, sa));
        Assert.True(MseDiffieHellman.TrySharedSecret(ya, xb, sb));
        Assert.Equal(sa, sb);
        Assert.NotEqual(new byte[96], sa);
    }

    [Fact]
    public void Public_key_is_two_to_the_private_key_left_padded()
    {
        var x = new byte[20];
        x[19] = 10;
        var y = new byte[96];
        MseDiffieHellman.PublicKey(MseDiffieHellman.PrivateKey(x), y);
        var expected = new byte[96];
        expected[94] = 0x04; // 2^10 = 0x0400
        Assert.Equal(expected, y);
    }

    [Fact]
    public void Degenerate_public_keys_are_refused()
    {
        var x = MseDiffieHellman.PrivateKey(RandomNumberGenerator.GetBytes(20));
        var s = new byte[96];
        var one = new byte[96];
        one[95] = 1;
        var pMinusOne = (byte[])Prime.Clone();
        pMinusOne[95]--;
        Assert.False(MseDiffieHellman.TrySharedSecret(new byte[96], x, s));
        Assert.False(MseDiffieHellman.TrySharedSecret(one, x, s));
        Assert.False(MseDiffieHellman.TrySharedSecret(pMinusOne, x, s));
        Assert.False(MseDiffieHellman.TrySharedSecret(Prime, x, s));
        Assert.False(MseDiffieHellman.TrySharedSecret(Enumerable.Repeat((byte)0xFF, 96).ToArray(), x, s));
    }
}

public sealed class MseHandshakeTests
{
    private static readonly byte[] InfoHash = Convert.FromHexString("0123456789abcdef0123456789abcdef01234567");

    /// <summary>Runs both handshakes against each other, delivering bytes in chunks of at most <paramref name="chunk"/>.</summary>
    internal static (MseHandshake A, MseHandshake B, MseStatus StatusA, MseStatus StatusB) Converse(
        MseHandshake a, MseHandshake b, int chunk, Func<byte[], byte[]>? tamperAtoB = null)
    {
        var toB = new List<byte>();
        var toA = new List<byte>();
        var w = new ArrayBufferWriter<byte>();
        a.Start(w);
        toB.AddRange(w.WrittenSpan.ToArray());
        w.ResetWrittenCount();
        b.Start(w);
        toA.AddRange(w.WrittenSpan.ToArray());
        w.ResetWrittenCount();
        var bufA = new List<byte>();
        var bufB = new List<byte>();
        MseStatus sa = MseStatus.NeedMore, sb = MseStatus.NeedMore;
        for (var round = 0; round < 10_000 && (toA.Count > 0 || toB.Count > 0); round++)
        {
            if (toB.Count > 0 && sb == MseStatus.NeedMore)
            {
                var take = Math.Min(chunk, toB.Count);
                var bytes = toB.GetRange(0, take).ToArray();
                toB.RemoveRange(0, take);
                if (tamperAtoB is not null) bytes = tamperAtoB(bytes);
                bufB.AddRange(bytes);
                sb = b.Advance(bufB.ToArray(), w, out var used);
                bufB.RemoveRange(0, used);
                toA.AddRange(w.WrittenSpan.ToArray());
                w.ResetWrittenCount();
            }
            else
            {
                toB.Clear();
            }

            if (toA.Count > 0 && sa == MseStatus.NeedMore)
            {
                var take = Math.Min(chunk, toA.Count);
                bufA.AddRange(toA.GetRange(0, take));
                toA.RemoveRange(0, take);
                sa = a.Advance(bufA.ToArray(), w, out var used);
                bufA.RemoveRange(0, used);
                toB.AddRange(w.WrittenSpan.ToArray());
                w.ResetWrittenCount();
            }
            else
            {
                toA.Clear();
            }
        }

        return (a, b, sa, sb);
    }

    [Theory]
    [InlineData(CryptoMethods.Plaintext | CryptoMethods.Rc4, CryptoMethods.Plaintext | CryptoMethods.Rc4, false, CryptoMethods.Plaintext)]
    [InlineData(CryptoMethods.Plaintext | CryptoMethods.Rc4, CryptoMethods.Plaintext | CryptoMethods.Rc4, true, CryptoMethods.Rc4)]
    [InlineData(CryptoMethods.Rc4, CryptoMethods.Plaintext | CryptoMethods.Rc4, false, CryptoMethods.Rc4)]
    [InlineData(CryptoMethods.Plaintext | CryptoMethods.Rc4, CryptoMethods.Rc4, false, CryptoMethods.Rc4)]
    [InlineData(CryptoMethods.Plaintext, CryptoMethods.Plaintext | CryptoMethods.Rc4, true, CryptoMethods.Plaintext)]
    public void Initiator_and_responder_agree(CryptoMethods provide, CryptoMethods accept, bool preferRc4, CryptoMethods expected)
    {
        var (a, b, sa, sb) = Converse(MseHandshake.CreateInitiator(InfoHash, provide),
            MseHandshake.CreateResponder([new byte[20], InfoHash], accept, preferRc4), chunk: 37);
        Assert.Equal(MseStatus.Done, sa);
        Assert.Equal(MseStatus.Done, sb);
        Assert.Equal(expected, a.Method);
        Assert.Equal(expected, b.Method);
        Assert.Equal(InfoHash, b.Skey.ToArray());
        if (expected == CryptoMethods.Rc4)
        {
            var message = "hello through RC4"u8.ToArray();
            var wire = new byte[message.Length];
            a.Encryptor!.Transform(message, wire);
            Assert.NotEqual(message, wire);
            b.Decryptor!.Transform(wire);
            Assert.Equal(message, wire);
            b.Encryptor!.Transform(message, wire);
            a.Decryptor!.Transform(wire);
            Assert.Equal(message, wire);
        }
        else
        {
            Assert.Null(a.Encryptor);
            Assert.Null(b.Encryptor);
            Assert.Null(a.Decryptor);
            Assert.Null(b.Decryptor); // our initiator sends no IA
        }
    }

    [Fact]
    public void No_common_method_fails_typed()
    {
        var (_, b, _, sb) = Converse(MseHandshake.CreateInitiator(InfoHash, CryptoMethods.Plaintext),
            MseHandshake.CreateResponder([InfoHash], CryptoMethods.Rc4, false), chunk: 1000);
        Assert.Equal(MseStatus.Failed, sb);
        Assert.Equal(MseError.NoCommonMethod, b.Error);
    }

    [Fact]
    public void Unknown_info_hash_fails_typed()
    {
        var (_, b, _, sb) = Converse(MseHandshake.CreateInitiator(InfoHash, CryptoMethods.Rc4),
            MseHandshake.CreateResponder([new byte[20]], CryptoMethods.Rc4, false), chunk: 1000);
        Assert.Equal(MseStatus.Failed, sb);
        Assert.Equal(MseError.UnknownInfoHash, b.Error);
    }

    [Fact]
    public void Responder_gives_up_after_the_bounded_scan()
    {
        var b = MseHandshake.CreateResponder([InfoHash], CryptoMethods.Rc4, false);
        var w = new ArrayBufferWriter<byte>();
        b.Start(w);
        var ya = new byte[96];
        MseDiffieHellman.PublicKey(MseDiffieHellman.PrivateKey(RandomNumberGenerator.GetBytes(20)), ya);
        Assert.Equal(MseStatus.NeedMore, b.Advance(ya, w, out var used));
        Assert.Equal(96, used);
        // 531 bytes without HASH('req1', S) may still be PadA + a partial hash; the 532nd byte ends the scan.
        var noise = new byte[MseHandshake.MaxLookahead];
        Assert.Equal(MseStatus.NeedMore, b.Advance(noise.AsSpan(0, noise.Length - 1), w, out used));
        Assert.Equal(0, used);
        Assert.Equal(MseStatus.Failed, b.Advance(noise, w, out _));
        Assert.Equal(MseError.SyncFailed, b.Error);
    }

    [Fact]
    public void Initiator_detects_a_plain_handshake_answer()
    {
        var a = MseHandshake.CreateInitiator(InfoHash, CryptoMethods.Rc4);
        var w = new ArrayBufferWriter<byte>();
        a.Start(w);
        var plain = new byte[68];
        plain[0] = 19;
        "BitTorrent protocol"u8.CopyTo(plain.AsSpan(1));
        Assert.Equal(MseStatus.Failed, a.Advance(plain, w, out _));
        Assert.Equal(MseError.PlaintextPeer, a.Error);
    }

    [Fact]
    public async Task Negotiator_hands_over_the_payload_read_past_the_handshake()
    {
        // A transmission-style initiator: its BitTorrent handshake travels in IA, RC4-encrypted even when plaintext
        // is selected, and the payload after it is plain. Here: our negotiator as responder over a socket pair.
        using var pair = await SocketPair.CreateAsync();
        var accept = MseNegotiator.AcceptAsync(pair.Server, [InfoHash], EncryptionPolicy.Prefer, CancellationToken.None);
        var initiate = MseNegotiator.InitiateAsync(pair.Client, InfoHash, EncryptionPolicy.Require, CancellationToken.None);
        var (server, client) = (await accept, await initiate);
        Assert.True(server.Succeeded);
        Assert.True(client.Succeeded);
        Assert.Equal(CryptoMethods.Rc4, server.Method);
        await using var clientStream = client.Wrap(pair.Client);
        await using var serverStream = server.Wrap(pair.Server);
        var payload = RandomNumberGenerator.GetBytes(200_000);
        var send = clientStream.WriteAsync(payload).AsTask();
        var received = new byte[payload.Length];
        await serverStream.ReadExactlyAsync(received);
        await send;
        Assert.Equal(payload, received);
    }

    [Fact]
    public async Task Acceptor_sorts_plain_from_encrypted_per_policy()
    {
        var plain = new byte[68];
        plain[0] = 19;
        "BitTorrent protocol"u8.CopyTo(plain.AsSpan(1));
        var ok = await MseNegotiator.AcceptAsync(new MemoryStream(plain), [InfoHash], EncryptionPolicy.Prefer, CancellationToken.None);
        Assert.True(ok.Succeeded);
        Assert.Equal(CryptoMethods.None, ok.Method);
        var back = new byte[68];
        await ok.WrapInput(new MemoryStream()).ReadExactlyAsync(back);
        Assert.Equal(plain, back);
        var refused = await MseNegotiator.AcceptAsync(new MemoryStream(plain), [InfoHash], EncryptionPolicy.Require, CancellationToken.None);
        Assert.Equal(MseError.PlaintextRefused, refused.Error);
        var noise = await MseNegotiator.AcceptAsync(new MemoryStream(new byte[200]), [InfoHash], EncryptionPolicy.Off, CancellationToken.None);
        Assert.Equal(MseError.EncryptionRefused, noise.Error);
    }
}

/// <summary>Fuzzing: random and mutated handshakes never throw and end typed, with bounded work.</summary>
public sealed class MseFuzzTests
{
    private static readonly byte[] InfoHash = Convert.FromHexString("0123456789abcdef0123456789abcdef01234567");

    // Small private keys (one random byte) keep ModPow cheap, so a million inputs run in seconds; the parser is the
    // same code whatever the key.
    private static Action<Span<byte>> CheapRandom(int seed)
    {
        var random = new Random(seed);
        return span =>
        {
            random.NextBytes(span);
            if (span.Length == MseDiffieHellman.PrivateKeyLength) span[..19].Clear();
        };
    }

    /// <summary>Feeds <paramref name="data"/> to a started handshake in chunks; its final status, or null if a rule broke.</summary>
    private static MseStatus? Feed(MseHandshake h, byte[] data, int chunk)
    {
        var w = new ArrayBufferWriter<byte>();
        chunk = 1 + (int)((uint)chunk % 700);
        var start = 0;
        var end = 0;
        var status = MseStatus.NeedMore;
        while (end < data.Length && status == MseStatus.NeedMore)
        {
            end = Math.Min(end + chunk, data.Length);
            status = h.Advance(data.AsSpan(start, end - start), w, out var used);
            if (used < 0 || used > end - start) return null;
            start += used;
            // Bounded lookahead: what a step leaves unconsumed never grows past Y plus the scan window.
            if (status == MseStatus.NeedMore && end - start > MseDiffieHellman.KeyLength + MseHandshake.MaxLookahead) return null;
            w.ResetWrittenCount();
        }

        return status == MseStatus.Failed && h.Error == MseError.None ? null : status;
    }

    private static MseHandshake Started(MseHandshake h)
    {
        h.Start(new ArrayBufferWriter<byte>());
        return h;
    }

    [Property(MaxTest = 400_000)]
    public bool Responder_never_throws_on_random_bytes(byte[] data, int chunk, int seed) =>
        Feed(Started(MseHandshake.CreateResponder([InfoHash], CryptoMethods.Plaintext | CryptoMethods.Rc4, false, CheapRandom(seed))), data ?? [], chunk) is not null;

    [Property(MaxTest = 300_000)]
    public bool Initiator_never_throws_on_random_bytes(byte[] data, int chunk, int seed) =>
        Feed(Started(MseHandshake.CreateInitiator(InfoHash, CryptoMethods.Plaintext | CryptoMethods.Rc4, CheapRandom(seed))), data ?? [], chunk) is not null;

    /// <summary>
    /// A real initiator's transcript (Ya, PadA, the hashes, the encrypted VC/provide/PadC/IA) with one byte changed
    /// reaches the responder's deep states: it ends typed, and an unchanged transcript (value 0) completes.
    /// </summary>
    [Property(MaxTest = 300_000)]
    public bool Responder_handles_mutated_transcripts(int seed, int position, byte value, int chunk)
    {
        var a = MseHandshake.CreateInitiator(InfoHash, CryptoMethods.Plaintext | CryptoMethods.Rc4, CheapRandom(seed));
        var b = MseHandshake.CreateResponder([InfoHash], CryptoMethods.Plaintext | CryptoMethods.Rc4, false, CheapRandom(~seed));
        var w = new ArrayBufferWriter<byte>();
        a.Start(w);
        var transcript = new List<byte>(w.WrittenSpan.ToArray());
        w.ResetWrittenCount();
        b.Start(w);
        var fromB = w.WrittenSpan.ToArray();
        w.ResetWrittenCount();
        if (a.Advance(fromB, w, out _) != MseStatus.NeedMore) return false;
        transcript.AddRange(w.WrittenSpan.ToArray());
        var bytes = transcript.ToArray();
        bytes[(int)((uint)position % (uint)bytes.Length)] ^= value;
        var status = Feed(b, bytes, chunk);
        return status is not null && (value != 0 || status == MseStatus.Done);
    }
}

/// <summary>Two connected loopback sockets as streams.</summary>
internal sealed class SocketPair : IDisposable
{
    private SocketPair(Stream client, Stream server)
    {
        Client = client;
        Server = server;
    }

    public Stream Client { get; }

    public Stream Server { get; }

    public static async Task<SocketPair> CreateAsync()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var client = new System.Net.Sockets.TcpClient();
        var accept = listener.AcceptTcpClientAsync();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, ((System.Net.IPEndPoint)listener.LocalEndpoint).Port);
        var server = await accept;
        return new SocketPair(client.GetStream(), server.GetStream());
    }

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
    }
}
