namespace Peerway.Core.Multiformats;

/// <summary>Why a multiformat value (varint, multihash, multibase, CID) was rejected. <see cref="None"/> is success.</summary>
public enum MultiformatError
{
    /// <summary>No error.</summary>
    None = 0,
    /// <summary>The input ended inside a value.</summary>
    Truncated,
    /// <summary>A varint longer than 9 bytes or above 2^63 - 1 (unsigned-varint spec: "limited to 9 bytes").</summary>
    VarintOverflow,
    /// <summary>A varint with superfluous trailing zero groups (unsigned-varint spec: "MUST be minimally encoded").</summary>
    VarintNotMinimal,
    /// <summary>The input is empty.</summary>
    Empty,
    /// <summary>The input exceeds the length bound for this kind of value.</summary>
    TooLong,
    /// <summary>A multibase prefix this implementation does not decode.</summary>
    UnsupportedMultibase,
    /// <summary>A character outside the multibase alphabet.</summary>
    InvalidCharacter,
    /// <summary>Non-zero padding bits at the end of a base32 string.</summary>
    NonCanonicalEncoding,
    /// <summary>A multihash function code other than sha2-256 (0x12) or identity (0x00).</summary>
    UnsupportedHashFunction,
    /// <summary>A multihash whose digest length is wrong for its function or does not match the bytes present.</summary>
    DigestLengthMismatch,
    /// <summary>A CID version other than 0 or 1.</summary>
    UnsupportedCidVersion,
    /// <summary>A CIDv0 that is not a 34-byte sha2-256 multihash (or a CIDv1 declaring version 0).</summary>
    InvalidCidV0,
    /// <summary>Bytes after a complete value where none are allowed.</summary>
    TrailingData,
}
