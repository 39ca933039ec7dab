using System.Globalization;
using System.Text.RegularExpressions;
using Xunit;

namespace Peerway.TestSupport;

/// <summary>A <c>/metrics</c> scrape with a line check of the Prometheus text exposition format 0.0.4 (what <c>promtool check metrics</c> parses).</summary>
public static partial class PrometheusScrape
{
    [GeneratedRegex("""^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$""")]
    private static partial Regex Help();

    [GeneratedRegex("""^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$""")]
    private static partial Regex Type();

    [GeneratedRegex("""^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*,?\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)( -?[0-9]+)?$""")]
    private static partial Regex SampleLine();

    /// <summary>GETs <paramref name="url"/>, expects 200 text/plain, checks every line, returns the text.</summary>
    public static async Task<string> GetAsync(HttpClient http, string url)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var response = await http.GetAsync(new Uri(url)).ConfigureAwait(false);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        Check(text);
        return text;
    }

    /// <summary>Fails on a line that is not a HELP, a TYPE (one per family) or a sample of a family typed before it.</summary>
    public static void Check(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var typed = new HashSet<string>(StringComparer.Ordinal);
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length - 1; i++)
        {
            var line = lines[i];
            if (line.Length == 0 || line == "# EOF" || Help().IsMatch(line)) continue;
            if (Type().Match(line) is { Success: true } t)
            {
                Assert.True(typed.Add(t.Groups[1].Value), $"line {i + 1}: a second TYPE for {t.Groups[1].Value}");
                continue;
            }

            var m = SampleLine().Match(line);
            Assert.True(m.Success, $"line {i + 1} is not a valid sample: {line}");
            var family = m.Groups[1].Value;
            Assert.True(typed.Contains(family) || typed.Any(f => family.StartsWith(f + "_", StringComparison.Ordinal)), $"line {i + 1}: {family} has no TYPE line before it");
        }
    }

    /// <summary>The sum of the samples of <paramref name="name"/> whose labels contain <paramref name="label"/>; 0 when none.</summary>
    public static double Sum(string text, string name, string label)
    {
        ArgumentNullException.ThrowIfNull(text);
        double sum = 0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith('#')) continue;
            var space = line.LastIndexOf(' ');
            if (space < 0) continue;
            var head = line[..space];
            var metric = head.Split('{')[0];
            if (metric != name || !head.Contains(label, StringComparison.Ordinal)) continue;
            sum += double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }

        return sum;
    }
}
