using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Content.Blocks;
using Peerway.Content.Gateway;

namespace Peerway.Node.Content;

/// <summary>Serves a <see cref="TrustlessGateway"/> over HTTP/1.1 with <see cref="HttpListener"/>.</summary>
public sealed partial class GatewayServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly TrustlessGateway _gateway;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public GatewayServer(IBlockStore store, string host, int port, ILogger<GatewayServer>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        _gateway = new TrustlessGateway(store);
        _logger = logger ?? NullLogger<GatewayServer>.Instance;
        // HttpListener matches the Host header against the prefix: the wildcard addresses become "*" (any host).
        var prefixHost = host is "0.0.0.0" or "::" or "[::]" or "*" or "+" ? "*" : host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host;
        Prefix = $"http://{prefixHost}:{port}/";
        Port = port;
        _listener.Prefixes.Add(Prefix);
    }

    public string Prefix { get; }

    public int Port { get; }

    /// <summary>Starts listening (throws <see cref="HttpListenerException"/> when the port is taken).</summary>
    public void Start()
    {
        _listener.Start();
        _loop = AcceptLoopAsync(_stop.Token);
    }

    private async Task AcceptLoopAsync(CancellationToken cancellationToken)
    {
        var inFlight = new List<Task>();
        while (!cancellationToken.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or OperationCanceledException)
            {
                break;
            }

            inFlight.RemoveAll(t => t.IsCompleted);
            inFlight.Add(ServeAsync(context, cancellationToken));
        }

        await Task.WhenAll(inFlight).ConfigureAwait(false);
    }

    private async Task ServeAsync(HttpListenerContext context, CancellationToken cancellationToken)
    {
        var response = context.Response;
        try
        {
            var request = context.Request;
            var result = _gateway.Handle(new GatewayRequest(
                request.HttpMethod,
                request.Url?.AbsolutePath ?? "/",
                request.Url?.Query,
                request.Headers["Accept"],
                request.Headers["If-None-Match"]));
            LogRequest(request.HttpMethod, request.RawUrl ?? "/", result.Status);
            response.StatusCode = result.Status;
            response.ContentType = result.ContentType;
            foreach (var (name, value) in result.Headers)
            {
                response.Headers[name] = value;
            }

            if (result.ContentLength is { } length)
            {
                response.ContentLength64 = length;
            }
            else
            {
                response.SendChunked = true;
            }

            if (request.HttpMethod != "HEAD" && result.WriteBody is not null)
            {
                await result.WriteBody(response.OutputStream, cancellationToken).ConfigureAwait(false);
            }

            response.Close();
        }
        catch (Exception ex) when (ex is IOException or HttpListenerException or OperationCanceledException or ObjectDisposedException)
        {
            LogAborted(ex.Message);
            response.Abort();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Close();
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "gateway {Method} {Url} -> {Status}")]
    private partial void LogRequest(string method, string url, int status);

    [LoggerMessage(Level = LogLevel.Information, Message = "gateway response aborted: {Reason}")]
    private partial void LogAborted(string reason);
}
