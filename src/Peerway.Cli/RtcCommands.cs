using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Peerway.Nat.Turn;
using Peerway.Net;
using Peerway.WebRtc;
using Peerway.WebRtc.DataChannels;

namespace Peerway.Cli;

/// <summary>`peerway rtc listen` (answer WebRTC offers POSTed over HTTP) and `peerway rtc connect` (offer to such an endpoint).</summary>
internal static class RtcCommands
{
    /// <summary>Bound on an offer's body and on connections alive at once.</summary>
    private const int MaxOfferBytes = 64 * 1024;
    private const int DefaultMaxConnections = 64;

    public static Command Create() => new("rtc", "WebRTC data channels (DTLS + SCTP + DCEP over ICE) with browsers and other stacks.") { Listen(), Connect() };

    private sealed record IceServers(IPEndPoint? Stun, IPEndPoint? Turn, TurnCredentials? Credentials);

    private static async Task<IceServers> ParseServersAsync(ParseResult parse, Option<string?> stun, Option<string?> turn, Option<string?> user, Option<string?> pass, CancellationToken ct)
    {
        var stunEp = parse.GetValue(stun) is { } s ? await NatCommands.ResolveAsync(s, "--stun", ct) : null;
        var turnEp = parse.GetValue(turn) is { } t ? await NatCommands.ResolveAsync(t, "--turn", ct) : null;
        var u = parse.GetValue(user);
        var pw = parse.GetValue(pass);
        if (turnEp is not null && (u is null || pw is null)) throw new UsageException("--turn needs --user and --pass");
        return new IceServers(stunEp, turnEp, turnEp is null ? null : new TurnCredentials(u!, pw!));
    }

    private static Command Listen()
    {
        var http = new Option<string>("--http") { Description = "IP:PORT for the HTTP endpoint (POST /rtc with an SDP offer).", Required = true };
        var echo = new Option<bool>("--echo") { Description = "Send every message back on its channel, unchanged." };
        var stun = new Option<string?>("--stun") { Description = "STUN server HOST:PORT for a server-reflexive candidate." };
        var turn = new Option<string?>("--turn") { Description = "TURN server HOST:PORT (with --user and --pass)." };
        var user = new Option<string?>("--user") { Description = "TURN user name." };
        var pass = new Option<string?>("--pass") { Description = "TURN password." };
        var bind = new Option<string?>("--bind") { Description = "IP for the ICE host candidate (default: the --http IP)." };
        var iceLite = new Option<bool>("--ice-lite") { Description = "Be an ICE-lite agent (RFC 8445 §2.5; a server on a reachable address): a=ice-lite in the answer, host candidate only, no checks of its own." };
        var maxConnections = new Option<int>("--max-connections") { Description = "Peer connections alive at once; a further offer is answered 503.", DefaultValueFactory = _ => DefaultMaxConnections };
        var command = new Command("listen", "Answer WebRTC offers: POST /rtc (application/sdp, complete offer) answers 201 with the SDP answer.")
        {
            http, echo, stun, turn, user, pass, bind, iceLite, maxConnections,
        };
        command.SetAction(async (parse, ct) =>
        {
            var httpText = parse.GetValue(http)!;
            if (!IPEndPoint.TryParse(httpText, out var httpEp) || httpEp.Port == 0) throw new UsageException($"--http: '{httpText}' is not IP:PORT");
            var bindIp = parse.GetValue(bind) is { } b ? NatCommands.ParseIp(b, "--bind") : httpEp.Address;
            if (bindIp.Equals(IPAddress.Any) || bindIp.Equals(IPAddress.IPv6Any)) throw new UsageException("--bind must be a concrete address (it is the ICE host candidate)");
            var limit = parse.GetValue(maxConnections);
            if (limit is < 1 or > 10_000) throw new UsageException("--max-connections must be in 1..10000");
            var servers = await ParseServersAsync(parse, stun, turn, user, pass, ct);
            var lite = parse.GetValue(iceLite);
            if (lite && (servers.Stun is not null || servers.Turn is not null)) throw new UsageException("--ice-lite gathers the host candidate only: no --stun or --turn");
            var host = httpEp.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{httpEp.Address}]" : httpEp.Address.ToString();
            var prefix = string.Create(CultureInfo.InvariantCulture, $"http://{host}:{httpEp.Port}/");
            using var listener = new HttpListener();
            listener.Prefixes.Add(prefix);
            try
            {
                listener.Start();
            }
            catch (HttpListenerException ex)
            {
                throw new RuntimeFailureException($"cannot listen on {httpEp}: {ex.Message}", ex);
            }

            using var loggers = CliLogging.Create();
            var log = loggers.CreateLogger("rtc");
            var server = new ListenServer(bindIp, servers, lite, parse.GetValue(echo), limit, loggers, log);
            Console.WriteLine($"rtc: listening on {prefix}rtc");
            await using (ct.Register(listener.Stop))
            {
                while (!ct.IsCancellationRequested)
                {
                    HttpListenerContext context;
                    try
                    {
                        context = await listener.GetContextAsync();
                    }
                    catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                    {
                        break;
                    }

                    server.Tasks.Add(server.ServeAsync(context, ct));
                }
            }

            await server.DisposeAsync();
            return CliRunner.Ok;
        });
        return command;
    }

    /// <summary>The listen command's state: one peer connection per accepted offer, each with its own UDP socket.</summary>
    private sealed class ListenServer(IPAddress bindIp, IceServers servers, bool iceLite, bool echo, int maxConnections, ILoggerFactory loggers, ILogger log) : IAsyncDisposable
    {
        private readonly Lock _gate = new();
        private readonly HashSet<RtcPeerConnection> _connections = [];

        /// <summary>Every request, echo and connection watch, awaited at shutdown.</summary>
        public TaskGroup Tasks { get; } = new(log);

        public async Task ServeAsync(HttpListenerContext context, CancellationToken ct)
        {
            var request = context.Request;
            var response = context.Response;

            // CORS (Fetch standard): any origin may POST an offer; preflights are answered.
            response.AddHeader("Access-Control-Allow-Origin", "*");
            try
            {
                if (request.HttpMethod == "OPTIONS")
                {
                    response.AddHeader("Access-Control-Allow-Methods", "POST, OPTIONS");
                    response.AddHeader("Access-Control-Allow-Headers", "Content-Type");
                    response.AddHeader("Access-Control-Max-Age", "600");
                    response.StatusCode = 204;
                    return;
                }

                if (request.Url?.AbsolutePath != "/rtc")
                {
                    await WriteAsync(response, 404, "text/plain", "not found: POST an SDP offer to /rtc\n", ct);
                    return;
                }

                if (request.HttpMethod != "POST")
                {
                    response.AddHeader("Allow", "POST, OPTIONS");
                    await WriteAsync(response, 405, "text/plain", "POST an SDP offer to /rtc\n", ct);
                    return;
                }

                var body = await ReadBodyAsync(request, ct);
                if (body is null)
                {
                    await WriteAsync(response, 413, "text/plain", $"the offer is larger than {MaxOfferBytes} bytes\n", ct);
                    return;
                }

                await AnswerAsync(body, response, ct);
            }
            catch (Exception ex) when (ex is HttpListenerException or IOException or OperationCanceledException or ObjectDisposedException)
            {
                log.LogDebug("HTTP request failed: {Reason}", ex.Message);
            }
            finally
            {
                try
                {
                    response.Close();
                }
                catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException or InvalidOperationException)
                {
                    log.LogDebug("HTTP response not sent: {Reason}", ex.Message);
                }
            }
        }

        private async Task AnswerAsync(string offer, HttpListenerResponse response, CancellationToken ct)
        {
            lock (_gate)
            {
                if (_connections.Count >= maxConnections)
                {
                    // The per-process bound (--max-connections): the offer is refused, those connected keep running.
                    log.LogWarning("refused an offer: {Count} connections already (--max-connections)", maxConnections);
                    response.StatusCode = 503;
                    return;
                }
            }

            var pc = new RtcPeerConnection(new UdpDatagramSocket(new IPEndPoint(bindIp, 0)), TimeProvider.System, new RtcConfiguration
            {
                StunServer = servers.Stun,
                TurnServer = servers.Turn,
                TurnCredentials = servers.Credentials,
                IceLite = iceLite,
            }, loggers);
            string answer;
            try
            {
                answer = await pc.AcceptOfferAsync(offer, ct);
            }
            catch (SdpException ex)
            {
                await pc.DisposeAsync();
                await WriteAsync(response, 400, "text/plain", ex.Message + "\n", ct);
                return;
            }

            lock (_gate) _connections.Add(pc);
            pc.DataChannelOpened += (_, channel) =>
            {
                Console.WriteLine($"channel open {channel.Label} id {channel.Id} {(channel.Ordered ? "ordered" : "unordered")}");
                if (echo) Tasks.Add(EchoAsync(channel, log, ct));
            };
            pc.DataChannelClosed += (_, channel) => Console.WriteLine($"channel closed {channel.Label}");
            Tasks.Add(WatchAsync(pc));
            await WriteAsync(response, 201, "application/sdp", answer, ct);
        }

        private async Task WatchAsync(RtcPeerConnection pc)
        {
            try
            {
                await pc.Connected;
                await pc.Closed;
            }
            catch (InvalidOperationException ex)
            {
                log.LogWarning("rtc: {Reason}", ex.Message);
            }

            lock (_gate) _connections.Remove(pc);
            await pc.DisposeAsync();
        }

        public async ValueTask DisposeAsync()
        {
            List<RtcPeerConnection> all;
            lock (_gate) all = [.. _connections];
            foreach (var pc in all) await pc.DisposeAsync();
            await Tasks.WhenAllAsync();
        }
    }

    /// <summary>Sends every message received on <paramref name="channel"/> back on it (same type) until it closes.</summary>
    internal static async Task EchoAsync(RtcDataChannel channel, ILogger log, CancellationToken ct)
    {
        try
        {
            await foreach (var m in channel.ReadAllAsync(ct))
            {
                try
                {
                    if (m.IsText) await channel.SendAsync(m.Text, ct);
                    else await channel.SendAsync(m.Data, ct);
                }
                catch (ArgumentException ex)
                {
                    // A message the peer can send but not take back (its a=max-message-size is smaller than ours,
                    // e.g. werift's 64 KiB): that one is skipped, the channel keeps echoing.
                    log.LogWarning("echo on {Label}: skipped a {Bytes}-byte message: {Reason}", channel.Label, m.Data.Length, ex.Message);
                }
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
        {
            log.LogDebug("echo on {Label} ended: {Reason}", channel.Label, ex.Message);
        }
    }

    private static async Task<string?> ReadBodyAsync(HttpListenerRequest request, CancellationToken ct)
    {
        if (request.ContentLength64 > MaxOfferBytes) return null;
        var buffer = new byte[MaxOfferBytes + 1];
        var n = 0;
        while (n < buffer.Length)
        {
            var read = await request.InputStream.ReadAsync(buffer.AsMemory(n), ct);
            if (read == 0) break;
            n += read;
        }

        return n > MaxOfferBytes ? null : Encoding.UTF8.GetString(buffer, 0, n);
    }

    private static async Task WriteAsync(HttpListenerResponse response, int status, string contentType, string body, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        response.StatusCode = status;
        response.ContentType = contentType;
        response.ContentLength64 = bytes.Length;
        await response.OutputStream.WriteAsync(bytes, ct);
    }

    private static Command Connect()
    {
        var url = new Argument<string>("url") { Description = "The endpoint, e.g. http://127.0.0.1:8088/rtc (peerway rtc listen --echo)." };
        var label = new Option<string>("--label") { Description = "Channel label.", DefaultValueFactory = _ => "peerway" };
        var count = new Option<int>("--count") { Description = "Messages to send.", DefaultValueFactory = _ => 10 };
        var size = new Option<int>("--size") { Description = "Bytes per message.", DefaultValueFactory = _ => 1024 };
        var unordered = new Option<bool>("--unordered") { Description = "An unordered channel." };
        var maxRetransmits = new Option<int?>("--max-retransmits") { Description = "Partial reliability: at most N retransmissions." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the echoes.", DefaultValueFactory = _ => 60 };
        var bind = new Option<string?>("--bind") { Description = "IP for the ICE host candidate (default: the one that reaches the URL's host)." };
        var command = new Command("connect", "Offer a data channel to a `rtc listen --echo` endpoint, send messages and check every echo.")
        {
            url, label, count, size, unordered, maxRetransmits, timeout, bind,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (!Uri.TryCreate(parse.GetValue(url), UriKind.Absolute, out var uri) || uri.Scheme != "http") throw new UsageException("url: not an http:// URL");
            var n = parse.GetValue(count);
            var bytes = parse.GetValue(size);
            var seconds = parse.GetValue(timeout);
            if (n is < 1 or > 10_000_000) throw new UsageException("--count must be in 1..10000000");
            if (bytes is < 1 or > 256 * 1024) throw new UsageException("--size must be in 1..262144");
            if (seconds is <= 0 or > 3600) throw new UsageException("--timeout must be in (0, 3600]");
            var retransmits = parse.GetValue(maxRetransmits);
            if (retransmits is < 0) throw new UsageException("--max-retransmits must be ≥ 0");
            var target = await NatCommands.ResolveAsync($"{uri.Host}:{uri.Port}", "url", ct);
            var bindIp = parse.GetValue(bind) is { } b ? NatCommands.ParseIp(b, "--bind") : NatCommands.LocalAddressFor(target);
            using var loggers = CliLogging.Create();
            var setup = Stopwatch.StartNew();
            await using var pc = new RtcPeerConnection(new UdpDatagramSocket(new IPEndPoint(bindIp, 0)), TimeProvider.System, new RtcConfiguration(), loggers);
            var offer = await pc.CreateOfferAsync(ct);
            string answer;
            using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) })
            {
                HttpResponseMessage reply;
                try
                {
                    reply = await http.PostAsync(uri, new StringContent(offer, Encoding.UTF8, "application/sdp"), ct);
                }
                catch (HttpRequestException ex)
                {
                    throw new RuntimeFailureException($"cannot POST the offer to {uri}: {ex.Message}", ex);
                }

                answer = await reply.Content.ReadAsStringAsync(ct);
                if (reply.StatusCode != HttpStatusCode.Created) throw new RuntimeFailureException($"{uri} answered {(int)reply.StatusCode}: {answer.Trim()}");
            }

            RtcDataChannel channel;
            try
            {
                pc.SetAnswer(answer);
                await pc.Connected.WaitAsync(ct);
                channel = await pc.CreateDataChannelAsync(parse.GetValue(label)!, new RtcDataChannelInit { Ordered = !parse.GetValue(unordered), MaxRetransmits = retransmits }, ct);
            }
            catch (SdpException ex)
            {
                throw new RuntimeFailureException($"bad answer: {ex.Message}", ex);
            }
            catch (InvalidOperationException ex)
            {
                throw new RuntimeFailureException(ex.Message, ex);
            }

            var setupMs = setup.Elapsed.TotalMilliseconds;

            var all = await SendAndCheckEchoesAsync(channel, n, bytes, TimeSpan.FromSeconds(seconds), setupMs, ct);
            channel.Close();
            return all ? CliRunner.Ok : CliRunner.RuntimeError;
        });
        return command;
    }

    /// <summary>
    /// Sends <paramref name="n"/> random messages of <paramref name="bytes"/> bytes on <paramref name="channel"/> (each
    /// starts with its index), checks every echo against what was sent whatever the order, and prints the contract line
    /// <c>echoed N of N messages (B bytes) in S s: X MB/s; setup Y ms</c>. True when every message came back intact.
    /// </summary>
    internal static async Task<bool> SendAndCheckEchoesAsync(RtcDataChannel channel, int n, int bytes, TimeSpan timeout, double setupMs, CancellationToken ct)
    {
        // Each message starts with its index, so an echo is checked against what was sent whatever the order.
        var payloads = new byte[n][];
        for (var i = 0; i < n; i++)
        {
            var m = new byte[bytes];
            RandomNumberGenerator.Fill(m);
            if (bytes >= 4) System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(m, i);
            payloads[i] = m;
        }

        var clock = Stopwatch.StartNew();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var echoed = 0;
        var seen = new bool[n];
        var receive = Task.Run(async () =>
        {
            try
            {
                await foreach (var m in channel.ReadAllAsync(deadline.Token))
                {
                    var i = bytes >= 4 ? System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(m.Data.Span) : echoed;
                    if (i < 0 || i >= n || seen[i] || !m.Data.Span.SequenceEqual(payloads[i])) continue;
                    seen[i] = true;
                    if (++echoed == n) return;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }, CancellationToken.None);
        try
        {
            foreach (var p in payloads) await channel.SendAsync(p, deadline.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException)
        {
            await Console.Error.WriteLineAsync($"peerway: sending stopped: {ex.Message}");
        }

        await receive;
        var elapsed = clock.Elapsed.TotalSeconds;
        var total = (long)echoed * bytes;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"echoed {echoed} of {n} messages ({total} bytes) in {elapsed:F3} s: {total / 1e6 / Math.Max(elapsed, 1e-9):F2} MB/s; setup {setupMs:F0} ms"));
        return echoed == n;
    }
}
