using System.Net;
using System.Net.Http.Headers;

namespace Peerway.Torrent.WebSeeds;

/// <summary>Why a web seed's answer was not used.</summary>
internal enum WebSeedError
{
    None,

    /// <summary>An HTTP error status (4xx, 5xx), or a redirect not followed (too many, or a loop).</summary>
    HttpStatus,

    /// <summary>200 OK with the whole file instead of 206 Partial Content for the range asked (no range support).</summary>
    NotPartial,

    /// <summary>206 with a Content-Range other than the one asked.</summary>
    WrongRange,

    /// <summary>A body shorter or longer than the range.</summary>
    WrongLength,

    /// <summary>The body did not arrive within the request timeout (a slow drip included).</summary>
    Timeout,

    /// <summary>The connection failed (refused, reset, DNS).</summary>
    Network,
}

/// <summary>One HTTP range request (RFC 9110 §14) to a web seed, checked strictly; never throws for what the server does.</summary>
internal static class WebSeedFetcher
{
    /// <summary>
    /// GETs <paramref name="range"/> into <paramref name="destination"/> (its length is the range's). The answer must be
    /// 206 with exactly that Content-Range (when given) and exactly that many bytes, within <paramref name="timeout"/>.
    /// </summary>
    public static async Task<(WebSeedError Error, string Detail)> FetchAsync(HttpClient http, WebSeedRange range, Memory<byte> destination, TimeSpan timeout, TimeProvider time, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(time);
        using var request = new HttpRequestMessage(HttpMethod.Get, range.Url);
        request.Headers.Range = new RangeHeaderValue(range.FileOffset, range.FileOffset + range.Length - 1);
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.OK) return (WebSeedError.NotPartial, "200 OK instead of 206 Partial Content (no Range support)");
            if (response.StatusCode != HttpStatusCode.PartialContent) return (WebSeedError.HttpStatus, $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            if (response.Content.Headers.ContentRange is { } cr && (cr.From != range.FileOffset || cr.To != range.FileOffset + range.Length - 1))
            {
                return (WebSeedError.WrongRange, $"Content-Range {cr} for bytes {range.FileOffset}-{range.FileOffset + range.Length - 1}");
            }

            if (response.Content.Headers.ContentLength is { } declared && declared != range.Length)
            {
                return (WebSeedError.WrongLength, $"Content-Length {declared} for a range of {range.Length}");
            }

            var body = await response.Content.ReadAsStreamAsync(linked.Token).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                var read = 0;
                while (read < destination.Length)
                {
                    var n = await body.ReadAsync(destination[read..], linked.Token).ConfigureAwait(false);
                    if (n == 0) return (WebSeedError.WrongLength, $"{read} bytes for a range of {range.Length}");
                    read += n;
                }

                var extra = new byte[1];
                if (await body.ReadAsync(extra, linked.Token).ConfigureAwait(false) != 0) return (WebSeedError.WrongLength, $"more than the {range.Length} bytes asked");
            }

            return (WebSeedError.None, "");
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            return (WebSeedError.Timeout, $"no complete answer within {timeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException ex)
        {
            return (WebSeedError.Network, ex.Message);
        }
        catch (IOException ex)
        {
            return (WebSeedError.Network, ex.Message);
        }
    }
}
