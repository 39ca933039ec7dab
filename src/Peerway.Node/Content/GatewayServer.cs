using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Content.Blocks;
using Peerway.Content.Gateway;

namespace Peerway.Node.Content;

/// <summary>Limits that keep slow or idle HTTP clients from holding the gateway (issue 20 §4), enforced by Kestrel.</summary>
public sealed record GatewayServerOptions
{
    /// <summary>Time to receive a request's headers once its first byte arrived (Kestrel's RequestHeadersTimeout); a
    /// slowloris client sending a header line now and then is cut off after it. 10 s, as the HTTP tracker.</summary>
    public TimeSpan HeadersTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Time a connection may stay silent before its first request and between requests (Kestrel's
    /// KeepAliveTimeout, 130 s by default there).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Slowest request body accepted, in bytes per second averaged since the body began, once
    /// <see cref="BodyGracePeriod"/> has passed (Kestrel's MinRequestBodyDataRate; its defaults 240 B/s after 5 s).</summary>
    public double MinBodyBytesPerSecond { get; init; } = 240;

    /// <summary>More than Kestrel's heartbeat of 1 s, which checks the rate.</summary>
    public TimeSpan BodyGracePeriod { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The gateway takes no request bodies: anything larger is refused (413).</summary>
    public long MaxRequestBodyBytes { get; init; } = 16 * 1024;

    /// <summary>Connections open at once (Kestrel's MaxConcurrentConnections); one more is closed at once.</summary>
    public int MaxConnections { get; init; } = 1000;

    public void Validate()
    {
        if (HeadersTimeout <= TimeSpan.Zero || IdleTimeout <= TimeSpan.Zero) throw new ArgumentException("Timeouts must be positive.");
        if (!double.IsFinite(MinBodyBytesPerSecond) || MinBodyBytesPerSecond <= 0) throw new ArgumentException("MinBodyBytesPerSecond must be positive.");
        if (BodyGracePeriod <= TimeSpan.FromSeconds(1)) throw new ArgumentException("BodyGracePeriod must be more than 1 s (Kestrel's heartbeat).");
        if (MaxRequestBodyBytes < 0) throw new ArgumentException("MaxRequestBodyBytes must be ≥ 0.");
        if (MaxConnections < 1) throw new ArgumentException("MaxConnections must be at least 1.");
    }
}

/// <summary>Serves a <see cref="TrustlessGateway"/> over HTTP/1.1 on Kestrel, with <see cref="GatewayServerOptions"/>.</summary>
public sealed partial class GatewayServer : IAsyncDisposable
{
    private readonly TrustlessGateway _gateway;
    private readonly ILogger _logger;
    private readonly WebApplication _app;

    public GatewayServer(IBlockStore store, string host, int port, ILogger<GatewayServer>? logger = null, GatewayServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(host);
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        options ??= new GatewayServerOptions();
        options.Validate();
        _gateway = new TrustlessGateway(store);
        _logger = logger ?? NullLogger<GatewayServer>.Instance;
        var wildcard = host is "0.0.0.0" or "::" or "[::]" or "*" or "+";
        Host = wildcard ? "*" : host.Contains(':', StringComparison.Ordinal) ? $"[{host.Trim('[', ']')}]" : host;
        Port = port;

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            var limits = kestrel.Limits;
            limits.RequestHeadersTimeout = options.HeadersTimeout;
            limits.KeepAliveTimeout = options.IdleTimeout;
            limits.MinRequestBodyDataRate = new MinDataRate(options.MinBodyBytesPerSecond, options.BodyGracePeriod);
            limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            limits.MaxConcurrentConnections = options.MaxConnections;
            kestrel.AddServerHeader = false;
            void Http1(ListenOptions listen) => listen.Protocols = HttpProtocols.Http1;
            if (wildcard) kestrel.ListenAnyIP(port, Http1);
            else if (IPAddress.TryParse(host.Trim('[', ']'), out var address)) kestrel.Listen(address, port, Http1);
            else if (host == "localhost") kestrel.ListenLocalhost(port, Http1);
            else kestrel.Listen(Dns.GetHostAddresses(host)[0], port, Http1);
        });
        _app = builder.Build();
        _app.Run(ServeAsync);
    }

    /// <summary>Called with the status of each request answered (the node's metrics).</summary>
    internal Action<int>? OnAnswered { get; init; }

    /// <summary>The URL prefix served, e.g. <c>http://127.0.0.1:8080/</c> (the bound port once started).</summary>
    public string Prefix => $"http://{Host}:{Port}/";

    /// <summary>The listening port: as given, or the one the system picked for 0 once started.</summary>
    public int Port { get; private set; }

    private string Host { get; }

    /// <summary>Starts listening; throws <see cref="IOException"/> when the address cannot be bound (e.g. in use).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (await KestrelStart.StartAsync(_app, cancellationToken).ConfigureAwait(false) is { } bound) Port = bound;
    }

    private async Task ServeAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        var cancellationToken = context.RequestAborted;
        try
        {
            // The gateway reads no request body, but a client sending one must not hold the connection: read it (at least
            // MinBodyBytesPerSecond after the grace period, at most MaxRequestBodyBytes) and drop it.
            await request.Body.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
            var result = _gateway.Handle(new GatewayRequest(
                request.Method,
                request.Path.HasValue ? request.Path.Value! : "/",
                request.QueryString.HasValue ? request.QueryString.Value : null,
                request.Headers.Accept.Count > 0 ? request.Headers.Accept.ToString() : null,
                request.Headers.IfNoneMatch.Count > 0 ? request.Headers.IfNoneMatch.ToString() : null));
            LogRequest(request.Method, request.Path + request.QueryString, result.Status);
            OnAnswered?.Invoke(result.Status);
            response.StatusCode = result.Status;
            response.ContentType = result.ContentType;
            foreach (var (name, value) in result.Headers)
            {
                response.Headers[name] = value;
            }

            // Without a length, Kestrel answers HTTP/1.1 chunked.
            if (result.ContentLength is { } length) response.ContentLength = length;
            if (!HttpMethods.IsHead(request.Method) && result.WriteBody is not null)
            {
                await result.WriteBody(response.Body, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException ex)
        {
            // A body too slow (408) or too large (413): Kestrel closes the connection after this answer.
            LogAborted(ex.Message);
            if (!response.HasStarted) response.StatusCode = ex.StatusCode;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            LogAborted(ex.Message);
            context.Abort();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "gateway {Method} {Url} -> {Status}")]
    private partial void LogRequest(string method, string url, int status);

    [LoggerMessage(Level = LogLevel.Information, Message = "gateway response aborted: {Reason}")]
    private partial void LogAborted(string reason);
}
