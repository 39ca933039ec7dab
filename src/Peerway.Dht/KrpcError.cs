namespace Peerway.Dht;

/// <summary>Why a datagram is not a valid KRPC message (BEP 5). <see cref="None"/> means success.</summary>
public enum KrpcError
{
    /// <summary>A valid message.</summary>
    None = 0,
    /// <summary>Longer than <see cref="KrpcCodec.MaxDatagramLength"/>.</summary>
    DatagramTooLarge,
    /// <summary>Not valid bencode (truncated, too deep, bad integer, ...).</summary>
    MalformedBencode,
    /// <summary>The top-level value is not a dictionary.</summary>
    NotADictionary,
    /// <summary>No "t" key, or it is not a string.</summary>
    MissingTransactionId,
    /// <summary>"t" longer than <see cref="KrpcMessage.MaxTransactionIdLength"/>.</summary>
    TransactionIdTooLong,
    /// <summary>No "y" key, or it is not "q", "r" or "e".</summary>
    InvalidType,
    /// <summary>A query without a "q" string (or a method name that is too long).</summary>
    MissingMethod,
    /// <summary>A query without an "a" dictionary, or a response without an "r" dictionary.</summary>
    MissingBody,
    /// <summary>No "id", or it is not 20 bytes.</summary>
    InvalidId,
    /// <summary>find_node without a 20-byte "target".</summary>
    InvalidTarget,
    /// <summary>get_peers / announce_peer without a 20-byte "info_hash".</summary>
    InvalidInfoHash,
    /// <summary>announce_peer "port" missing (without implied_port) or outside 1..65535.</summary>
    InvalidPort,
    /// <summary>announce_peer without a token, or a token longer than <see cref="KrpcMessage.MaxTokenLength"/>.</summary>
    InvalidToken,
    /// <summary>"nodes"/"nodes6" not a multiple of 26/38 bytes.</summary>
    InvalidNodes,
    /// <summary>"values" not a list of 6- or 18-byte strings, or more than <see cref="KrpcCodec.MaxValues"/>.</summary>
    InvalidValues,
    /// <summary>"e" not a list [integer, string].</summary>
    InvalidError,
    /// <summary>BEP 42 "ip" not a 6- or 18-byte compact address.</summary>
    InvalidAddress,
    /// <summary>A known key with a value of the wrong type.</summary>
    WrongFieldType,
    /// <summary>BEP 44: a put without "v" or "token", or a mutable field ("k", "sig", "seq", "salt", "cas") of the wrong
    /// type.</summary>
    InvalidItem,
    /// <summary>BEP 32: "want" a list with a non-string entry or more than <see cref="KrpcCodec.MaxWantEntries"/> entries.</summary>
    InvalidWant,
}
