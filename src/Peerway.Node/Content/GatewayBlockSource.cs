using System.Net.Http.Headers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Content.Blocks;
using Peerway.Content.DagPb;
using Peerway.Core.Multiformats;

namespace Peerway.Node.Content;

/// <summary>
/// A verifying trustless-gateway client: asks each gateway in turn for <c>/ipfs/{cid}?format=raw</c>
/// (Accept: application/vnd.ipld.raw) and accepts only a block whose hash matches the CID; a gateway that sends a
/// wrong block is skipped for that block and the next one is asked.
/// </summary>
public sealed partial class GatewayBlockSource : IBlockSource
{
    private readonly HttpClient _http;
    private readonly IReadOnlyList<Uri> _gateways;
    private readonly ILogger _logger;

    public GatewayBlockSource(HttpClient http, IReadOnlyList<Uri> gateways, ILogger<GatewayBlockSource>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(gateways);
        _http = http;
        _gateways = gateways;
        _logger = logger ?? NullLogger<GatewayBlockSource>.Instance;
    }

    /// <summary>Blocks rejected because their hash did not match.</summary>
    public int Rejected { get; private set; }

    /// <summary>
    /// Why the last <see cref="FetchAsync"/> that returned null found nothing: one entry per gateway asked, so a caller
    /// can tell "no gateway has it" from "no gateway could be reached".
    /// </summary>
    public IReadOnlyList<GatewayMiss> LastMisses { get; private set; } = [];

    public async Task<byte[]?> FetchAsync(Cid cid, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cid);
        var misses = new List<GatewayMiss>(_gateways.Count);
        foreach (var gateway in _gateways)
        {
            var uri = new Uri(gateway, $"/ipfs/{cid}?format=raw");
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.ipld.raw"));
            try
            {
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken)
                    .ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    LogMiss(gateway, cid.ToString(), (int)response.StatusCode);
                    misses.Add(new GatewayMiss(gateway, (int)response.StatusCode, null));
                    continue;
                }

                if (response.Content.Headers.ContentLength > DagPbCodec.MaxBlockSize)
                {
                    LogMiss(gateway, cid.ToString(), 413);
                    misses.Add(new GatewayMiss(gateway, 413, null));
                    continue;
                }

                var block = await ReadBoundedAsync(response.Content, cancellationToken).ConfigureAwait(false);
                if (block is null || !BlockVerifier.Verify(cid, block))
                {
                    Rejected++;
                    LogRejected(gateway, cid.ToString());
                    misses.Add(new GatewayMiss(gateway, (int)response.StatusCode, "sent a block that does not match its CID"));
                    continue;
                }

                return block;
            }
            catch (HttpRequestException ex)
            {
                LogFailure(gateway, ex.Message);
                misses.Add(new GatewayMiss(gateway, null, ex.Message));
            }
            catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                // HttpClient.Timeout: this gateway is too slow; try the next one.
                LogFailure(gateway, ex.Message);
                misses.Add(new GatewayMiss(gateway, null, "no answer in time"));
            }
        }

        LastMisses = misses;
        return null;
    }

    private static async Task<byte[]?> ReadBoundedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[64 * 1024];
            int read;
            while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > DagPbCodec.MaxBlockSize)
                {
                    return null;
                }

                await buffer.WriteAsync(chunk.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }

            return buffer.ToArray();
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "gateway {Gateway} has no {Cid} (HTTP {Status})")]
    private partial void LogMiss(Uri gateway, string cid, int status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "gateway {Gateway} sent a block that does not match {Cid}; rejected")]
    private partial void LogRejected(Uri gateway, string cid);

    [LoggerMessage(Level = LogLevel.Information, Message = "gateway {Gateway} failed: {Reason}")]
    private partial void LogFailure(Uri gateway, string reason);
}

/// <summary>One gateway's answer to a block it did not deliver: an HTTP status, or no answer at all (<see cref="Status"/> null).</summary>
public sealed record GatewayMiss(Uri Gateway, int? Status, string? Reason)
{
    /// <summary>The gateway could not be reached (connection refused, DNS, timeout): no HTTP answer.</summary>
    public bool Unreachable => Status is null;

    public override string ToString() =>
        Unreachable ? $"{Gateway} could not be reached ({Reason})" : Reason is null ? $"{Gateway} answered HTTP {Status}" : $"{Gateway} {Reason}";
}
