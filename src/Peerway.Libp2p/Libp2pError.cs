namespace Peerway.Libp2p;

/// <summary>Why a libp2p value or message from the network was refused. Decoders return these; they never throw.</summary>
public enum Libp2pError
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The input ended inside a value.</summary>
    Truncated,

    /// <summary>A varint that overflows or is not minimally encoded.</summary>
    BadVarint,

    /// <summary>A value longer than this implementation's bound for it.</summary>
    TooLong,

    /// <summary>A protobuf field with a wire type this message does not allow.</summary>
    BadWireType,

    /// <summary>A key type other than Ed25519, or a malformed key.</summary>
    UnsupportedKey,

    /// <summary>A signature that does not verify.</summary>
    BadSignature,

    /// <summary>A multiaddr protocol code or name this implementation does not know.</summary>
    UnknownProtocol,

    /// <summary>A malformed multiaddr component value.</summary>
    BadAddress,

    /// <summary>A peer id that is not a multihash of a public key.</summary>
    BadPeerId,

    /// <summary>A multistream-select line without its trailing newline, or not UTF-8.</summary>
    BadLine,

    /// <summary>A Noise message that fails authentication or has the wrong size.</summary>
    BadHandshake,

    /// <summary>A Yamux frame with an unknown version or type, or one the protocol forbids here.</summary>
    BadFrame,

    /// <summary>Bytes left over after a complete value.</summary>
    TrailingData,
}

/// <summary>A peer broke a libp2p protocol; the connection or stream it came on is closed, nothing else.</summary>
public sealed class Libp2pProtocolException : IOException
{
    /// <summary>Creates the exception.</summary>
    public Libp2pProtocolException(Libp2pError error, string message)
        : base(message) => Error = error;

    /// <summary>Creates the exception.</summary>
    public Libp2pProtocolException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public Libp2pProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public Libp2pProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>What was wrong.</summary>
    public Libp2pError Error { get; }
}
