namespace Peerway.Core.Bencoding;

/// <summary>Why a bencoded input was rejected. <see cref="None"/> means success.</summary>
public enum BencodeError
{
    /// <summary>No error.</summary>
    None = 0,
    /// <summary>The input ended inside a value.</summary>
    Truncated,
    /// <summary>A byte that cannot start or continue a value here.</summary>
    UnexpectedByte,
    /// <summary>An integer or string length with a leading zero (BEP 3: "i03e" is invalid).</summary>
    LeadingZero,
    /// <summary>"i-0e" (BEP 3: invalid).</summary>
    NegativeZero,
    /// <summary>An integer that does not fit in 64 bits.</summary>
    IntegerOverflow,
    /// <summary>A string longer than the configured limit or than the rest of the input.</summary>
    StringTooLong,
    /// <summary>Lists/dictionaries nested deeper than the configured limit.</summary>
    TooDeep,
    /// <summary>More values in total than the configured limit.</summary>
    TooManyItems,
    /// <summary>Dictionary keys not in strictly ascending raw-byte order (BEP 3: keys sorted).</summary>
    UnsortedKeys,
    /// <summary>A dictionary key appears twice.</summary>
    DuplicateKey,
    /// <summary>Bytes after the top-level value.</summary>
    TrailingData,
    /// <summary>The whole input exceeds the configured limit.</summary>
    InputTooLarge,
    /// <summary>A value of the wrong kind (e.g. a list where a string was expected).</summary>
    WrongType,
}
