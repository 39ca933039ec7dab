namespace Peerway.Content;

/// <summary>Why content-layer input (dag-pb, UnixFS, CAR, a block) was rejected. <see cref="None"/> is success.</summary>
public enum ContentError
{
    /// <summary>No error.</summary>
    None = 0,
    /// <summary>The input ended inside a field.</summary>
    Truncated,
    /// <summary>A protobuf varint longer than 10 bytes or overflowing 64 bits.</summary>
    VarintOverflow,
    /// <summary>A protobuf wire type that the schema does not allow for this field.</summary>
    WrongWireType,
    /// <summary>A field number the schema does not define (dag-pb spec: strict decoders reject unknown fields).</summary>
    UnknownField,
    /// <summary>dag-pb spec: Links (field 2) must precede Data (field 1), each PBLink field in order, at most once.</summary>
    FieldOrder,
    /// <summary>A field that may appear at most once appeared again.</summary>
    DuplicateField,
    /// <summary>A required field (PBLink.Hash, UnixFS Data.Type) is missing.</summary>
    MissingField,
    /// <summary>A CID inside a link or a CAR section is invalid.</summary>
    InvalidCid,
    /// <summary>A PBLink Name that is not valid UTF-8.</summary>
    InvalidName,
    /// <summary>A value above a bound (block size, link count, depth, section length).</summary>
    TooLarge,
    /// <summary>A UnixFS Data.Type value the spec does not define.</summary>
    UnknownUnixFsType,
    /// <summary>A UnixFS node inconsistent with its links (blocksizes count, sizes, wrong type for the operation).</summary>
    InvalidUnixFs,
    /// <summary>A block whose bytes do not hash to its CID.</summary>
    HashMismatch,
    /// <summary>A codec this implementation cannot traverse (not dag-pb or raw).</summary>
    UnsupportedCodec,
    /// <summary>A CAR header that is not dag-cbor {roots: [CID...], version: 1}.</summary>
    InvalidCarHeader,
    /// <summary>A CAR version other than 1.</summary>
    UnsupportedCarVersion,
    /// <summary>A block the store does not hold.</summary>
    NotFound,
    /// <summary>
    /// A directory entry name that cannot be written to a file system safely: empty, "." or "..", containing '/' or NUL,
    /// or repeated in the same directory.
    /// </summary>
    UnsafeName,
}
