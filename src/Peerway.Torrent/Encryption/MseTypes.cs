namespace Peerway.Torrent.Encryption;

/// <summary>MSE crypto_provide / crypto_select bits: "0x01 Plaintext, 0x02 RC4".</summary>
[Flags]
public enum CryptoMethods : uint
{
    /// <summary>No method (none offered, or none in common).</summary>
    None = 0,

    /// <summary>Only the handshake is obfuscated; the BitTorrent stream that follows is plaintext.</summary>
    Plaintext = 1,

    /// <summary>The whole stream is RC4-encrypted.</summary>
    Rc4 = 2,
}

/// <summary>Which peer connections a session makes and accepts (MSE/PE, "protocol encryption").</summary>
public enum EncryptionPolicy
{
    /// <summary>Plain BitTorrent handshakes only: MSE connections are refused, outgoing ones are plaintext.</summary>
    Off,

    /// <summary>
    /// Accept both; dial with MSE first (offering RC4 and plaintext), and fall back to a plaintext connection when the
    /// encrypted handshake fails. As responder, plaintext is selected when the peer offers both (libtorrent's default,
    /// <c>prefer_rc4 = false</c>): the handshake is obfuscated and the payload keeps full speed.
    /// </summary>
    Prefer,

    /// <summary>MSE with RC4 only, both ways: plain handshakes and plaintext-only peers are refused.</summary>
    Require,
}

/// <summary>Why an MSE handshake failed (a value, never an exception: the input is the network's).</summary>
internal enum MseError
{
    None,

    /// <summary>The peer closed the connection before the handshake completed.</summary>
    Closed,

    /// <summary>The peer's Diffie-Hellman public key is 0, 1, P-1 or not below P.</summary>
    BadPublicKey,

    /// <summary>HASH('req1', S) (responder) or the encrypted VC (initiator) was not found within the padding's bound.</summary>
    SyncFailed,

    /// <summary>HASH('req2', SKEY) names no torrent of ours.</summary>
    UnknownInfoHash,

    /// <summary>The decrypted verification constant is not 8 zero bytes.</summary>
    BadVerificationConstant,

    /// <summary>len(PadC) or len(PadD) above 512.</summary>
    PadTooLong,

    /// <summary>No crypto method both sides accept, or a crypto_select that is not one of the offered bits.</summary>
    NoCommonMethod,

    /// <summary>The peer answered our MSE handshake with a plain BitTorrent handshake (it does not speak MSE).</summary>
    PlaintextPeer,

    /// <summary>A plain BitTorrent handshake arrived while encryption is required.</summary>
    PlaintextRefused,

    /// <summary>An MSE handshake arrived while encryption is off.</summary>
    EncryptionRefused,
}

/// <summary>Progress of a sans-I/O handshake after one call.</summary>
internal enum MseStatus
{
    NeedMore,
    Done,
    Failed,
}

internal static class EncryptionPolicies
{
    /// <summary>What an initiator offers in crypto_provide.</summary>
    public static CryptoMethods Provide(this EncryptionPolicy policy) =>
        policy == EncryptionPolicy.Require ? CryptoMethods.Rc4 : CryptoMethods.Plaintext | CryptoMethods.Rc4;

    /// <summary>What a responder accepts (and selects from) in crypto_provide.</summary>
    public static CryptoMethods Accept(this EncryptionPolicy policy) => policy.Provide();
}
