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

    public async Task<byte[]?> FetchAsync(Cid cid, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cid);
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
                    continue;
                }

                if (response.Content.Headers.ContentLength > DagPbCodec.MaxBlockSize)
                {
                    LogMiss(gateway, cid.ToString(), 413);
                    continue;
                }

                var block = await ReadBoundedAsync(response.Content, cancellationToken).ConfigureAwait(false);
                if (block is null || !BlockVerifier.Verify(cid, block))
                {
                    Rejected++;
                    LogRejected(gateway, cid.ToString());
                    continue;
                }

                return block;
            }
            catch (HttpRequestException ex)
            {
                LogFailure(gateway, ex.Message);
            }
            catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                // HttpClient.Timeout: this gateway is too slow; try the next one.
                LogFailure(gateway, ex.Message);
            }
        }

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

                buffer.Write(chunk, 0, read);
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
