using System.Globalization;

namespace Peerway.Node.Streaming;

/// <summary>What a request's <c>Range</c> header asks of a representation of a known length.</summary>
public enum HttpRangeKind
{
    /// <summary>No Range header, an unknown unit, or several ranges: serve the whole representation (200).</summary>
    Whole,

    /// <summary>One satisfiable byte range: serve it (206).</summary>
    Partial,

    /// <summary>A byte range that is malformed or that the length cannot satisfy: 416 with <c>Content-Range: bytes */LENGTH</c>.</summary>
    Unsatisfiable,
}

/// <summary>The outcome of <see cref="HttpRange.Parse"/>: the kind, the first and last byte (inclusive) for <see cref="HttpRangeKind.Partial"/>, and why for the others.</summary>
public readonly record struct HttpRangeResult(HttpRangeKind Kind, long First, long Last, string? Reason)
{
    /// <summary>Bytes in the range.</summary>
    public long Length => Last - First + 1;
}

/// <summary>
/// Sans-I/O parser of the <c>Range</c> request header (RFC 9110 §14.1.2 and §14.2): <c>bytes=first-last</c>,
/// <c>bytes=first-</c> and <c>bytes=-suffix</c>. Bounded: a header longer than <see cref="MaxHeaderLength"/> or with
/// more than <see cref="MaxRanges"/> ranges is not parsed further. Never throws.
/// </summary>
public static class HttpRange
{
    /// <summary>Longest header parsed; a longer one is refused as unsatisfiable.</summary>
    public const int MaxHeaderLength = 1024;

    /// <summary>Most ranges looked at in one header.</summary>
    public const int MaxRanges = 16;

    /// <summary>Interprets <paramref name="header"/> (null: none) for a representation of <paramref name="length"/> bytes.</summary>
    public static HttpRangeResult Parse(string? header, long length)
    {
        if (header is null) return Whole(null);
        if (header.Length > MaxHeaderLength) return Bad("the Range header is too long");
        var eq = header.IndexOf('=', StringComparison.Ordinal);
        // RFC 9110 §14.2: a range unit the server does not understand is ignored.
        if (eq < 0) return Bad("no range unit");
        if (!header.AsSpan(0, eq).Trim().Equals("bytes", StringComparison.OrdinalIgnoreCase)) return Whole("unknown range unit");
        var specs = header[(eq + 1)..].Split(',', MaxRanges + 1);
        if (specs.Length > MaxRanges) return Bad("too many ranges");
        HttpRangeResult? single = null;
        foreach (var raw in specs)
        {
            var spec = raw.Trim();
            if (spec.Length == 0) continue;
            var r = ParseOne(spec, length);
            // RFC 9110 §14.1.1: a ranges-specifier that is invalid, or whose ranges are all unsatisfiable, gets 416.
            if (r.Kind == HttpRangeKind.Unsatisfiable && r.Reason!.StartsWith("malformed", StringComparison.Ordinal)) return r;
            if (r.Kind != HttpRangeKind.Partial) continue;
            // RFC 9110 §14.2: a server may ignore a Range header with several ranges and send the whole representation
            // (a streaming client asks for one range at a time; multipart/byteranges is not produced here).
            if (single is not null) return Whole("several ranges");
            single = r;
        }

        return single ?? Bad(length == 0 ? "the file is empty" : "no range within the file");
    }

    private static HttpRangeResult ParseOne(string spec, long length)
    {
        var dash = spec.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0) return Bad($"malformed range '{Shorten(spec)}'");
        var left = spec[..dash].Trim();
        var right = spec[(dash + 1)..].Trim();
        if (left.Length == 0)
        {
            // bytes=-N: the last N bytes (RFC 9110 §14.1.2 suffix-range).
            if (!TryNumber(right, out var suffix)) return Bad($"malformed range '{Shorten(spec)}'");
            if (suffix == 0 || length == 0) return Bad("empty suffix range");
            return new HttpRangeResult(HttpRangeKind.Partial, Math.Max(0, length - suffix), length - 1, null);
        }

        if (!TryNumber(left, out var first)) return Bad($"malformed range '{Shorten(spec)}'");
        long last;
        if (right.Length == 0) last = length - 1;
        else if (!TryNumber(right, out last)) return Bad($"malformed range '{Shorten(spec)}'");
        if (last < first) return Bad($"malformed range '{Shorten(spec)}' (last before first)");
        if (first >= length) return Bad($"range starts at {first}, beyond the length {length}");
        return new HttpRangeResult(HttpRangeKind.Partial, first, Math.Min(last, length - 1), null);
    }

    /// <summary>1*DIGIT that fits a long (an overflowing number is malformed, not wrapped).</summary>
    private static bool TryNumber(string s, out long value)
    {
        value = 0;
        if (s.Length == 0 || s.Length > 19) return false;
        foreach (var c in s)
        {
            if (c is < '0' or > '9') return false;
        }

        return long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "…";

    private static HttpRangeResult Whole(string? reason) => new(HttpRangeKind.Whole, 0, -1, reason);

    private static HttpRangeResult Bad(string reason) => new(HttpRangeKind.Unsatisfiable, 0, -1, reason);
}
