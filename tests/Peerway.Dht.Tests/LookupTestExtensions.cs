namespace Peerway.Dht.Tests;

/// <summary>The queries of <see cref="Lookup.NextQueries(Span{Candidate})"/> as a list, for assertions.</summary>
internal static class LookupTestExtensions
{
    public static List<Candidate> NextQueries(this Lookup lookup)
    {
        var buffer = new Candidate[lookup.MaxQueriesAtOnce];
        return [.. buffer.AsSpan(0, lookup.NextQueries(buffer))];
    }
}
