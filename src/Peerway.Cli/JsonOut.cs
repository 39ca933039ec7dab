using System.Text;
using System.Text.Json;
using Peerway.Dht;

namespace Peerway.Cli;

/// <summary>Builds the one-line JSON documents of <c>--json</c> (no reflection: Utf8JsonWriter).</summary>
internal static class JsonOut
{
    public static string Object(Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    public static void WriteLookup(Utf8JsonWriter w, LookupResult lookup)
    {
        w.WriteStartObject("lookup");
        w.WriteNumber("rounds", lookup.Rounds);
        w.WriteNumber("queries", lookup.QueriesSent);
        w.WriteNumber("responses", lookup.Responses);
        w.WriteNumber("elapsedMs", Math.Round(lookup.Elapsed.TotalMilliseconds, 1));
        w.WriteEndObject();
    }
}
