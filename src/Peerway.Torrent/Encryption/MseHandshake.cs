using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;

namespace Peerway.Torrent.Encryption;

/// <summary>
/// The Message Stream Encryption handshake (Vuze/Azureus spec, as libtorrent, transmission, aria2 and qBittorrent
/// speak it), sans I/O: the caller feeds what it has received and sends what the handshake writes.
/// <code>
/// 1 A->B: Diffie Hellman Ya, PadA
/// 2 B->A: Diffie Hellman Yb, PadB
/// 3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S), ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
/// 4 B->A: ENCRYPT(VC, crypto_select, len(padD), padD), ENCRYPT2(Payload Stream)
/// 5 A->B: ENCRYPT2(Payload Stream)
/// </code>
/// <see cref="Advance"/> follows the PipeReader model: it consumes only what it has fully used and asks for more
/// (<see cref="MseStatus.NeedMore"/>) with the rest left in place, so the synchronisation scans need no copy. Work per
/// call is bounded: a scan looks at most at <see cref="MaxPadLength"/> + 20 bytes, a step at 96.
/// </summary>
internal sealed class MseHandshake
{
    /// <summary>MSE: "PadA, PadB: Random data with a random length of 0 to 512 bytes each"; len(PadC), len(PadD) likewise.</summary>
    public const int MaxPadLength = 512;

    private const int HashLength = 20;
    private const int VcLength = 8;

    /// <summary>The most bytes one call needs to see at once (the responder's scan for HASH('req1', S)).</summary>
    public const int MaxLookahead = MaxPadLength + HashLength;

    private static ReadOnlySpan<byte> Req1 => "req1"u8;
    private static ReadOnlySpan<byte> Req2 => "req2"u8;
    private static ReadOnlySpan<byte> Req3 => "req3"u8;
    private static ReadOnlySpan<byte> KeyA => "keyA"u8;
    private static ReadOnlySpan<byte> KeyB => "keyB"u8;

    private enum State
    {
        AwaitPublicKey,
        SyncVc,
        AwaitSelect,
        SkipPadD,
        SyncReq1,
        AwaitSkeyHash,
        AwaitProvide,
        SkipPadC,
        AwaitIaLength,
        Done,
        Failed,
    }

    private readonly bool _initiator;
    private readonly CryptoMethods _methods;
    private readonly bool _preferRc4;
    private readonly IReadOnlyList<byte[]> _skeys;
    private readonly Action<Span<byte>> _random;
    private readonly BigInteger _privateKey;
    private readonly byte[] _secret = new byte[MseDiffieHellman.KeyLength];
    private readonly byte[] _syncPattern = new byte[HashLength];
    private int _syncLength;
    private byte[]? _skey;
    private State _state;
    private int _padRemaining;
    private bool _started;

    private MseHandshake(bool initiator, CryptoMethods methods, bool preferRc4, IReadOnlyList<byte[]> skeys, Action<Span<byte>>? random)
    {
        _initiator = initiator;
        _methods = methods & (CryptoMethods.Plaintext | CryptoMethods.Rc4);
        if (_methods == CryptoMethods.None) throw new ArgumentException("no crypto method", nameof(methods));
        _preferRc4 = preferRc4;
        _skeys = skeys;
        _random = random ?? RandomNumberGenerator.Fill;
        Span<byte> x = stackalloc byte[MseDiffieHellman.PrivateKeyLength];
        _random(x);
        _privateKey = MseDiffieHellman.PrivateKey(x);
    }

    /// <summary>The side that dials: SKEY is the torrent's info-hash (the v1 one for a hybrid torrent).</summary>
    public static MseHandshake CreateInitiator(ReadOnlySpan<byte> skey, CryptoMethods provide, Action<Span<byte>>? random = null) =>
        new(initiator: true, provide, preferRc4: false, [], random) { _skey = skey.ToArray() };

    /// <summary>The side that accepts: <paramref name="skeys"/> are the info-hashes it serves.</summary>
    public static MseHandshake CreateResponder(IReadOnlyList<byte[]> skeys, CryptoMethods accept, bool preferRc4, Action<Span<byte>>? random = null) =>
        new(initiator: false, accept, preferRc4, skeys, random);

    public MseError Error { get; private set; }

    /// <summary>The method in force after <see cref="MseStatus.Done"/>.</summary>
    public CryptoMethods Method { get; private set; }

    /// <summary>The SKEY (info-hash) the handshake matched.</summary>
    public ReadOnlyMemory<byte> Skey => _skey;

    /// <summary>Encrypts what we send after the handshake; null in plaintext mode.</summary>
    public Rc4? Encryptor { get; private set; }

    /// <summary>Decrypts what we receive after the handshake: all of it in RC4 mode, only the first <see cref="DecryptLength"/> bytes (IA) otherwise.</summary>
    public Rc4? Decryptor { get; private set; }

    /// <summary>How many of the bytes after the handshake are RC4-encrypted: unbounded in RC4 mode; len(IA) in plaintext mode.</summary>
    public long DecryptLength { get; private set; }

    /// <summary>Writes our public key and PadA (or PadB). Call once, first.</summary>
    public void Start(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (_started) throw new InvalidOperationException("already started");
        _started = true;
        MseDiffieHellman.PublicKey(_privateKey, output.GetSpan(MseDiffieHellman.KeyLength));
        output.Advance(MseDiffieHellman.KeyLength);
        Span<byte> two = stackalloc byte[2];
        _random(two);
        var padLength = BinaryPrimitives.ReadUInt16BigEndian(two) % (MaxPadLength + 1);
        var pad = output.GetSpan(Math.Max(1, padLength))[..padLength];
        _random(pad);
        output.Advance(padLength);
    }

    /// <summary>
    /// Processes received bytes. <paramref name="consumed"/> says how many are used up; the caller keeps the rest and
    /// calls again with more appended. After <see cref="MseStatus.Done"/>, the unconsumed bytes are the payload stream.
    /// </summary>
    public MseStatus Advance(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!_started) throw new InvalidOperationException("call Start first");
        consumed = 0;
        while (true)
        {
            var rest = input[consumed..];
            switch (_state)
            {
                case State.Done:
                    return MseStatus.Done;
                case State.Failed:
                    return MseStatus.Failed;
                case State.AwaitPublicKey:
                    // A peer that does not speak MSE may answer our Ya with its own plain handshake (2^-160 for a real Yb).
                    if (_initiator && rest.Length >= PlainHandshake.HeaderLength && PlainHandshake.IsHeader(rest)) return Fail(MseError.PlaintextPeer);
                    if (rest.Length < MseDiffieHellman.KeyLength) return MseStatus.NeedMore;
                    if (!MseDiffieHellman.TrySharedSecret(rest, _privateKey, _secret)) return Fail(MseError.BadPublicKey);
                    consumed += MseDiffieHellman.KeyLength;
                    if (_initiator)
                    {
                        WriteStep3(output);
                    }
                    else
                    {
                        Hash(Req1, _secret, default, _syncPattern);
                        _syncLength = HashLength;
                        _state = State.SyncReq1;
                    }

                    break;
                case State.SyncVc:
                case State.SyncReq1:
                {
                    // MSE: "Since the length of [PadA/PadB] is unknown, B must synchronize on HASH('req1', S)" and A
                    // on ENCRYPT(VC): the pattern lies within the pad's 512 bytes after the public key.
                    var window = MaxPadLength + _syncLength;
                    var at = rest[..Math.Min(rest.Length, window)].IndexOf(_syncPattern.AsSpan(0, _syncLength));
                    if (at < 0) return rest.Length >= window ? Fail(MseError.SyncFailed) : MseStatus.NeedMore;
                    consumed += at + _syncLength;
                    _state = _state == State.SyncVc ? State.AwaitSelect : State.AwaitSkeyHash;
                    break;
                }

                case State.AwaitSelect:
                {
                    if (rest.Length < 6) return MseStatus.NeedMore;
                    Span<byte> plain = stackalloc byte[6];
                    Decryptor!.Transform(rest[..6], plain);
                    consumed += 6;
                    var select = (CryptoMethods)BinaryPrimitives.ReadUInt32BigEndian(plain);
                    var padD = BinaryPrimitives.ReadUInt16BigEndian(plain[4..]);
                    if (padD > MaxPadLength) return Fail(MseError.PadTooLong);
                    if (select is not (CryptoMethods.Plaintext or CryptoMethods.Rc4) || (select & _methods) == 0) return Fail(MseError.NoCommonMethod);
                    Method = select;
                    _padRemaining = padD;
                    _state = State.SkipPadD;
                    break;
                }

                case State.SkipPadD:
                case State.SkipPadC:
                {
                    var n = Math.Min(rest.Length, _padRemaining);
                    Decryptor!.Skip(n);
                    consumed += n;
                    _padRemaining -= n;
                    if (_padRemaining > 0) return MseStatus.NeedMore;
                    if (_state == State.SkipPadC)
                    {
                        _state = State.AwaitIaLength;
                        break;
                    }

                    Finish(initialPayload: 0);
                    return MseStatus.Done;
                }

                case State.AwaitSkeyHash:
                {
                    if (rest.Length < HashLength) return MseStatus.NeedMore;
                    Span<byte> wanted = stackalloc byte[HashLength];
                    Span<byte> candidate = stackalloc byte[HashLength];
                    Hash(Req3, _secret, default, wanted);
                    for (var i = 0; i < HashLength; i++) wanted[i] ^= rest[i];
                    consumed += HashLength;
                    foreach (var skey in _skeys)
                    {
                        Hash(Req2, skey, default, candidate);
                        if (!candidate.SequenceEqual(wanted)) continue;
                        _skey = skey;
                        break;
                    }

                    if (_skey is null) return Fail(MseError.UnknownInfoHash);
                    Decryptor = Cipher(KeyA);
                    Encryptor = Cipher(KeyB);
                    _state = State.AwaitProvide;
                    break;
                }

                case State.AwaitProvide:
                {
                    const int length = VcLength + 4 + 2;
                    if (rest.Length < length) return MseStatus.NeedMore;
                    Span<byte> plain = stackalloc byte[length];
                    Decryptor!.Transform(rest[..length], plain);
                    consumed += length;
                    if (plain[..VcLength].IndexOfAnyExcept((byte)0) >= 0) return Fail(MseError.BadVerificationConstant);
                    var provide = (CryptoMethods)BinaryPrimitives.ReadUInt32BigEndian(plain[VcLength..]) & _methods;
                    var padC = BinaryPrimitives.ReadUInt16BigEndian(plain[(VcLength + 4)..]);
                    if (padC > MaxPadLength) return Fail(MseError.PadTooLong);
                    Method = provide switch
                    {
                        CryptoMethods.Plaintext | CryptoMethods.Rc4 => _preferRc4 ? CryptoMethods.Rc4 : CryptoMethods.Plaintext,
                        _ => provide,
                    };
                    if (Method == CryptoMethods.None) return Fail(MseError.NoCommonMethod);
                    _padRemaining = padC;
                    _state = State.SkipPadC;
                    break;
                }

                case State.AwaitIaLength:
                {
                    if (rest.Length < 2) return MseStatus.NeedMore;
                    Span<byte> plain = stackalloc byte[2];
                    Decryptor!.Transform(rest[..2], plain);
                    consumed += 2;
                    // Step 4: ENCRYPT(VC, crypto_select, len(padD), padD) with no padD.
                    var step4 = output.GetSpan(VcLength + 4 + 2)[..(VcLength + 4 + 2)];
                    step4.Clear();
                    BinaryPrimitives.WriteUInt32BigEndian(step4[VcLength..], (uint)Method);
                    Encryptor!.Transform(step4);
                    output.Advance(step4.Length);
                    Finish(BinaryPrimitives.ReadUInt16BigEndian(plain));
                    return MseStatus.Done;
                }
            }
        }
    }

    /// <summary>Step 3, after S is known: the two hashes, then the encrypted VC, crypto_provide, PadC (none) and len(IA) = 0.</summary>
    private void WriteStep3(IBufferWriter<byte> output)
    {
        const int length = HashLength * 2 + VcLength + 4 + 2 + 2;
        var span = output.GetSpan(length)[..length];
        Hash(Req1, _secret, default, span[..HashLength]);
        Span<byte> req3 = stackalloc byte[HashLength];
        Hash(Req2, _skey, default, span.Slice(HashLength, HashLength));
        Hash(Req3, _secret, default, req3);
        for (var i = 0; i < HashLength; i++) span[HashLength + i] ^= req3[i];
        var encrypted = span[(HashLength * 2)..];
        encrypted.Clear();
        BinaryPrimitives.WriteUInt32BigEndian(encrypted[VcLength..], (uint)_methods);
        Encryptor = Cipher(KeyA);
        Decryptor = Cipher(KeyB);
        Encryptor.Transform(encrypted);
        output.Advance(length);
        // What B's ENCRYPT(VC) looks like: the first 8 bytes of its keystream (VC is zeros).
        Array.Clear(_syncPattern);
        Decryptor.Transform(_syncPattern.AsSpan(0, VcLength));
        _syncLength = VcLength;
        _state = State.SyncVc;
    }

    private void Finish(int initialPayload)
    {
        DecryptLength = Method == CryptoMethods.Rc4 ? long.MaxValue : initialPayload;
        if (Method != CryptoMethods.Rc4) Encryptor = null;
        if (DecryptLength == 0) Decryptor = null;
        _state = State.Done;
    }

    private MseStatus Fail(MseError error)
    {
        Error = error;
        _state = State.Failed;
        Encryptor = null;
        Decryptor = null;
        return MseStatus.Failed;
    }

    /// <summary>MSE: keyA = HASH('keyA', S, SKEY) encrypts A's stream, keyB = HASH('keyB', S, SKEY) B's, RC4 minus 1024 bytes.</summary>
    private Rc4 Cipher(ReadOnlySpan<byte> label)
    {
        Span<byte> key = stackalloc byte[HashLength];
        Hash(label, _secret, _skey, key);
        return Rc4.ForMse(key);
    }

    /// <summary>MSE: "HASH() is SHA1 binary output (20 bytes)" over the concatenation of its arguments.</summary>
    private static void Hash(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, Span<byte> destination)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        sha.AppendData(a);
        sha.AppendData(b);
        sha.AppendData(c);
        sha.GetHashAndReset(destination);
    }
}

/// <summary>BEP 3: a plain handshake starts with the byte 19 and "BitTorrent protocol".</summary>
internal static class PlainHandshake
{
    public const int HeaderLength = 20;

    public static bool IsHeader(ReadOnlySpan<byte> data) =>
        data.Length >= HeaderLength && data[0] == 19 && data.Slice(1, 19).SequenceEqual("BitTorrent protocol"u8);
}
