namespace Peerway.Core.Bencoding;

/// <summary>Bounds applied while decoding untrusted bencode.</summary>
public sealed record BencodeLimits
{
    /// <summary>Limits for a UDP datagram (KRPC): small input, shallow nesting.</summary>
    public static BencodeLimits Datagram { get; } = new() { MaxInputLength = 65_536, MaxDepth = 8, MaxItems = 4_096, MaxStringLength = 65_536 };

    /// <summary>Limits for .torrent files and extension messages.</summary>
    public static BencodeLimits Default { get; } = new();

    /// <summary>Largest input accepted, in bytes.</summary>
    public int MaxInputLength { get; init; } = 64 * 1024 * 1024;

    /// <summary>Deepest nesting of lists and dictionaries.</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>Most values (strings, integers, lists, dictionaries) in one document.</summary>
    public int MaxItems { get; init; } = 1_000_000;

    /// <summary>Longest byte string.</summary>
    public int MaxStringLength { get; init; } = 64 * 1024 * 1024;
}
