using System.Collections.Concurrent;
using System.CommandLine;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Peerway.Core.Threading;
using Peerway.Nat.Ice;
using Peerway.Nat.Turn;
using Peerway.Net;
using Peerway.WebRtc.Dtls;

namespace Peerway.Cli;

/// <summary>`peerway signal` (a tiny HTTP mailbox for ICE signaling) and `peerway connect` (ICE to a peer).</summary>
internal static class IceCommands
{
    /// <summary>Bound on queued messages per id and on one message's size.</summary>
    private const int MaxQueued = 256;
    private const int MaxMessageBytes = 1024;

    /// <summary>Bound on additional host candidates (the checklist grows with each).</summary>
    private const int MaxHostAddresses = 8;

    public static IEnumerable<Command> All()
    {
        yield return Signal();
        yield return Connect();
    }

    private static Command Signal()
    {
        var port = Listening.PortOption("--port", "TCP port for the HTTP signaling server.", 8089, allowZero: false);
        var bind = Listening.BindOption("IP address to listen on.", "127.0.0.1");
        var command = new Command("signal", "Run a tiny HTTP signaling mailbox: POST /send?to=ID (body: one line), GET /recv?id=ID (long poll).") { port, bind };
        command.SetAction(async (parse, ct) =>
        {
            var p = parse.GetValue(port);
            var ip = NatCommands.ParseIp(parse.GetValue(bind)!, "--bind");
            // HttpListener prefixes: "+" listens on every address; an IPv6 literal goes in brackets.
            var host = ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any) ? "+" : ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
            using var listener = new HttpListener();
            listener.Prefixes.Add($"http://{host}:{p}/");
            Listening.Bind(ip, p, () => { listener.Start(); return listener; });

            Console.WriteLine($"signal: listening on http://{host}:{p}/");
            var boxes = new ConcurrentDictionary<string, BlockingMailbox>();
            var requests = new BackgroundTasks();
            await using (ct.Register(listener.Stop))
            {
                while (!ct.IsCancellationRequested)
                {
                    HttpListenerContext context;
                    try
                    {
                        context = await listener.GetContextAsync();
                    }
                    catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
                    {
                        break;
                    }

                    requests.Track(ServeAsync(context, boxes, ct));
                }
            }

            await requests.WhenAllAsync();

            return CliRunner.Ok;
        });
        return command;
    }

    private static async Task ServeAsync(HttpListenerContext context, ConcurrentDictionary<string, BlockingMailbox> boxes, CancellationToken ct)
    {
        var response = context.Response;
        try
        {
            var path = context.Request.Url?.AbsolutePath;
            var to = context.Request.QueryString["to"];
            var id = context.Request.QueryString["id"];
            if (path == "/send" && context.Request.HttpMethod == "POST" && !string.IsNullOrEmpty(to))
            {
                var buffer = new byte[MaxMessageBytes + 1];
                var n = 0;
                int read;
                while (n < buffer.Length && (read = await context.Request.InputStream.ReadAsync(buffer.AsMemory(n), ct)) > 0) n += read;
                if (n > MaxMessageBytes)
                {
                    response.StatusCode = 413;
                }
                else
                {
                    var ok = boxes.GetOrAdd(to, _ => new BlockingMailbox()).Post(Encoding.UTF8.GetString(buffer, 0, n));
                    response.StatusCode = ok ? 204 : 429;
                }
            }
            else if (path == "/recv" && !string.IsNullOrEmpty(id))
            {
                var lines = await boxes.GetOrAdd(id, _ => new BlockingMailbox()).TakeAllAsync(TimeSpan.FromSeconds(10), ct);
                var body = Encoding.UTF8.GetBytes(string.Join('\n', lines));
                response.StatusCode = 200;

                // An explicit length: otherwise the managed HttpListener answers chunked and turns the empty write of a
                // poll that timed out into a second "0" terminator, which the client reads as the status line of its
                // next response on the kept-alive connection (and the lines drained for that request are lost).
                response.ContentLength64 = body.Length;
                if (body.Length > 0) await response.OutputStream.WriteAsync(body, ct);
            }
            else
            {
                response.StatusCode = 404;
            }
        }
        catch (Exception ex) when (ex is HttpListenerException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            response.StatusCode = 500;
        }
        finally
        {
            try
            {
                response.Close();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
            {
                // The client went away; nothing to tell it.
            }
        }
    }

    private sealed class BlockingMailbox
    {
        private readonly Queue<string> _queue = new();
        private readonly Lock _gate = new();
        private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Post(string line)
        {
            lock (_gate)
            {
                if (_queue.Count >= MaxQueued) return false;
                _queue.Enqueue(line);
                _signal.TrySetResult();
            }

            return true;
        }

        public async Task<List<string>> TakeAllAsync(TimeSpan wait, CancellationToken ct)
        {
            Task signal;
            lock (_gate)
            {
                if (_queue.Count > 0) return Drain();
                if (_signal.Task.IsCompleted) _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
                signal = _signal.Task;
            }

            await Task.WhenAny(signal, Task.Delay(wait, ct));
            lock (_gate) return Drain();
        }

        private List<string> Drain()
        {
            var lines = new List<string>(_queue);
            _queue.Clear();
            return lines;
        }
    }

    /// <summary>The HTTP mailbox as an <see cref="ISignalingChannel"/>; disposing it stops and awaits its two loops.</summary>
    private sealed class HttpSignalingChannel : ISignalingChannel, IAsyncDisposable
    {
        private readonly HttpClient _http;
        private readonly Uri _server;
        private readonly string _me;
        private readonly string _peer;
        private readonly CancellationTokenSource _stop;
        private readonly System.Threading.Channels.Channel<string> _outbox = System.Threading.Channels.Channel.CreateUnbounded<string>();
        private readonly BackgroundTasks _loops = new();

        public HttpSignalingChannel(HttpClient http, Uri server, string me, string peer, CancellationToken ct)
        {
            _http = http;
            _server = server;
            _me = me;
            _peer = peer;
            _stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _loops.Track(PostLoopAsync());
        }

        /// <summary>Queues the message; one loop posts them in order (the channel's contract).</summary>
        public Task SendAsync(string message, CancellationToken cancellationToken = default)
        {
            _outbox.Writer.TryWrite(message);
            return Task.CompletedTask;
        }

        public void Start(Action<string> onMessage) => _loops.Track(PollAsync(onMessage));

        public async ValueTask DisposeAsync()
        {
            _outbox.Writer.TryComplete();
            await _stop.CancelAsync();
            await _loops.WhenAllAsync();
            _stop.Dispose();
        }

        private async Task PostLoopAsync()
        {
            var ct = _stop.Token;
            try
            {
                await foreach (var message in _outbox.Reader.ReadAllAsync(ct))
                {
                    using var content = new StringContent(message);
                    try
                    {
                        using var r = await _http.PostAsync(new Uri(_server, $"send?to={Uri.EscapeDataString(_peer)}"), content, ct);
                    }
                    catch (HttpRequestException ex)
                    {
                        await Console.Error.WriteLineAsync($"signal: {ex.Message}");
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // Shutting down.
            }
        }

        private async Task PollAsync(Action<string> onMessage)
        {
            var ct = _stop.Token;
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    var text = await _http.GetStringAsync(new Uri(_server, $"recv?id={Uri.EscapeDataString(_me)}"), ct);
                    foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries)) onMessage(line);
                }
                catch (HttpRequestException ex)
                {
                    await Console.Error.WriteLineAsync($"signal: {ex.Message}");
                    await Task.Delay(TimeSpan.FromSeconds(1), ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private static Command Connect()
    {
        var signal = new Option<string>("--signal") { Description = "Signaling server URL (peerway signal), e.g. http://127.0.0.1:8089/", Required = true };
        var id = new Option<string>("--id") { Description = "This peer's id.", Required = true };
        var peer = new Option<string>("--peer") { Description = "The other peer's id.", Required = true };
        var stun = new Option<string?>("--stun") { Description = "STUN server HOST:PORT." };
        var turn = new Option<string?>("--turn") { Description = "TURN server HOST:PORT (with --user and --pass)." };
        var user = new Option<string?>("--user") { Description = "TURN user name." };
        var pass = new Option<string?>("--pass") { Description = "TURN password." };
        var bind = new Option<string?>("--bind") { Description = "Local IP for the only host candidate (default: the route to the STUN/TURN server, else 127.0.0.1, plus every other IPv4 address of the host's interfaces)." };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the connection.", DefaultValueFactory = _ => 30 };
        var hold = new Option<int>("--hold") { Description = "After the exchange, keep the path this many seconds (a datagram a second; RFC 7675 consent checks keep running) and report its state.", DefaultValueFactory = _ => 0 };
        var datachannel = new Option<bool>("--datachannel") { Description = "Run a WebRTC data channel (DTLS + SCTP + DCEP) over the selected path instead of the plain message: each side sends --count messages of --size bytes on its own channel and echoes the peer's." };
        var count = new Option<int>("--count") { Description = "With --datachannel: messages to send.", DefaultValueFactory = _ => 10 };
        var size = new Option<int>("--size") { Description = "With --datachannel: bytes per message.", DefaultValueFactory = _ => 1024 };
        var command = new Command("connect", "Connect to a peer with ICE (RFC 8445), exchange a message (or run a data channel), print the selected pair type (host, srflx or relay).")
        {
            signal, id, peer, stun, turn, user, pass, bind, timeout, hold, datachannel, count, size,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (!Uri.TryCreate(parse.GetValue(signal), UriKind.Absolute, out var server) || server.Scheme != Uri.UriSchemeHttp) throw new UsageException("--signal must be an http:// URL");
            if (!server.AbsoluteUri.EndsWith('/')) server = new Uri(server.AbsoluteUri + "/");
            var me = parse.GetValue(id)!;
            var them = parse.GetValue(peer)!;
            if (me == them) throw new UsageException("--id and --peer must differ");
            var stunEp = parse.GetValue(stun) is { } s ? await NatCommands.ResolveAsync(s, "--stun", ct) : null;
            var turnEp = parse.GetValue(turn) is { } t ? await NatCommands.ResolveAsync(t, "--turn", ct) : null;
            var u = parse.GetValue(user);
            var pw = parse.GetValue(pass);
            if (turnEp is not null && (u is null || pw is null)) throw new UsageException("--turn needs --user and --pass");
            var seconds = parse.GetValue(timeout);
            if (seconds is < 1 or > 3600) throw new UsageException("--timeout must be in 1..3600");
            var holdSeconds = parse.GetValue(hold);
            if (holdSeconds is < 0 or > 3600) throw new UsageException("--hold must be in 0..3600");
            var withChannel = parse.GetValue(datachannel);
            var n = parse.GetValue(count);
            var bytes = parse.GetValue(size);
            if (withChannel && holdSeconds > 0) throw new UsageException("--hold and --datachannel do not go together");
            if (!withChannel && (parse.GetResult(count) is { Implicit: false } || parse.GetResult(size) is { Implicit: false })) throw new UsageException("--count and --size need --datachannel");
            if (n is < 1 or > 10_000_000) throw new UsageException("--count must be in 1..10000000");
            if (bytes is < 1 or > 256 * 1024) throw new UsageException("--size must be in 1..262144");
            var bindIp = parse.GetValue(bind) is { } b ? NatCommands.ParseIp(b, "--bind")
                : (stunEp ?? turnEp) is { } via ? NatCommands.LocalAddressFor(via) : IPAddress.Loopback;
            if (bindIp.Equals(IPAddress.Any) || bindIp.Equals(IPAddress.IPv6Any))
            {
                // A wildcard socket has no address to offer as a host candidate (and its srflx base is not pairable).
                throw new UsageException("--bind needs a concrete local address, not a wildcard");
            }


            using var loggers = CliLogging.Create();
            var socket = Listening.Bind(bindIp, 0, () => new UdpDatagramSocket(new IPEndPoint(bindIp, 0)));

            // RFC 8445 §5.1.1.1: a host candidate on every interface, so that a peer sharing another network with us (a
            // second LAN, a VPN) is reached directly there. --bind pins the agent to one address.
            var extra = parse.GetValue(bind) is null ? OtherHostSockets(bindIp) : [];

            // Disposed asynchronously: the TURN allocation is deleted on the way out (RFC 8656 §7.3), not left to expire.
            await using var agent = new IceAgent(socket, TimeProvider.System, new IceAgentOptions
            {
                // Both ends derive opposite roles from their ids; a tie would be repaired by RFC 8445 §7.3.1.1 anyway.
                Role = string.CompareOrdinal(me, them) < 0 ? IceRole.Controlling : IceRole.Controlled,
                StunServer = stunEp,
                TurnServer = turnEp,
                TurnCredentials = turnEp is null ? null : new TurnCredentials(u!, pw!),
            }, loggers.CreateLogger<IceAgent>(), extra);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            await using var channel = new HttpSignalingChannel(http, server, me, them, stop.Token);
            var signaling = new FingerprintSignaling(channel);
            await using var link = IceSignaling.Attach(agent, signaling);
            var certificate = withChannel ? DtlsCertificate.Generate(TimeProvider.System) : null;
            if (certificate is not null) await signaling.SendAsync(FingerprintSignaling.Prefix + certificate.FingerprintSdp, ct);
            var started = TimeProvider.System.GetTimestamp();
            agent.Start();
            IDatagramSocket path;
            try
            {
                path = await agent.Connected.WaitAsync(TimeSpan.FromSeconds(seconds), ct);
            }
            catch (Exception ex) when (ex is IceFailedException or TimeoutException)
            {
                throw new RuntimeFailureException($"connect: {ex.Message}", ex);
            }

            var elapsed = TimeProvider.System.GetElapsedTime(started);
            var pair = agent.SelectedPair!;
            if (pair.Remote.Type == IceCandidateType.PeerReflexive)
            {
                // The peer's check can outrun its trickled candidate: until its end-of-candidates arrives the remote is
                // peer-reflexive. Report the type the peer signalled for that address, if it signals one in time.
                await Task.WhenAny(agent.RemoteCandidatesComplete, Task.Delay(TimeSpan.FromSeconds(2), ct)).ConfigureAwait(false);
                pair = agent.SelectedPair ?? pair;
            }

            Console.WriteLine(FormattableString.Invariant($"connected: {pair.Kind} (local {pair.Local.Type} {pair.Local.Address}, remote {pair.Remote.Type} {pair.Remote.Address}) in {elapsed.TotalMilliseconds:0} ms"));
            if (certificate is not null)
            {
                var remaining = TimeSpan.FromSeconds(seconds) - TimeProvider.System.GetElapsedTime(started);
                var ok = await IceDataChannel.RunAsync(path, agent.Role, certificate, signaling.Fingerprint, n, bytes, remaining, loggers, ct);
                await stop.CancelAsync();
                return ok ? CliRunner.Ok : CliRunner.RuntimeError;
            }

            var got = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            var datagrams = 0;
            path.Start((d, _) =>
            {
                Interlocked.Increment(ref datagrams);
                got.TrySetResult(Encoding.UTF8.GetString(d));
            });
            var hello = Encoding.UTF8.GetBytes($"hello from {me}");
            var deadline = TimeProvider.System.GetUtcNow() + TimeSpan.FromSeconds(seconds);

            // Datagrams may be lost or arrive before the peer selected the pair: repeat until the peer's arrives, and a
            // few times after, so that it gets ours too.
            while (!got.Task.IsCompleted && TimeProvider.System.GetUtcNow() < deadline)
            {
                path.Send(hello, pair.Remote.Address);
                await Task.WhenAny(got.Task, Task.Delay(TimeSpan.FromMilliseconds(200), ct));
            }

            if (!got.Task.IsCompleted) throw new RuntimeFailureException("connect: no message from the peer over the ICE path");
            for (var i = 0; i < 5; i++)
            {
                path.Send(hello, pair.Remote.Address);
                await Task.Delay(TimeSpan.FromMilliseconds(200), ct);
            }

            Console.WriteLine($"received: {await got.Task}");
            if (holdSeconds > 0)
            {
                // RFC 7675: the agent keeps checking consent on the selected pair while the application sends.
                var before = Volatile.Read(ref datagrams);
                for (var i = 0; i < holdSeconds && agent.State is IceState.Connected or IceState.Disconnected; i++)
                {
                    path.Send(hello, pair.Remote.Address);
                    await Task.Delay(TimeSpan.FromSeconds(1), ct);
                }

                var state = agent.State;
                Console.WriteLine($"held: {holdSeconds} s, state {state}, {Volatile.Read(ref datagrams) - before} datagrams from the peer");
                if (state is not (IceState.Connected or IceState.Disconnected)) throw new RuntimeFailureException($"connect: the path was lost during the hold ({state})");
            }

            await stop.CancelAsync();
            return CliRunner.Ok;
        });
        return command;
    }

    /// <summary>
    /// Sockets on this host's other IPv4 addresses (interfaces up; not loopback, not link-local, not
    /// <paramref name="primary"/>); an address that cannot be bound is skipped.
    /// </summary>
    private static List<IDatagramSocket> OtherHostSockets(IPAddress primary)
    {
        var sockets = new List<IDatagramSocket>();
        NetworkInterface[] interfaces;
        try
        {
            interfaces = NetworkInterface.GetAllNetworkInterfaces();
        }
        catch (NetworkInformationException)
        {
            return sockets;
        }

        var addresses = interfaces
            .Where(i => i.OperationalStatus == OperationalStatus.Up && i.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(i => i.GetIPProperties().UnicastAddresses.Select(a => a.Address))
            .Where(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a) && !a.Equals(primary) && !IPNetwork.Parse("169.254.0.0/16").Contains(a))
            .Distinct();
        foreach (var address in addresses.Take(MaxHostAddresses))
        {
            try
            {
                sockets.Add(new UdpDatagramSocket(new IPEndPoint(address, 0)));
            }
            catch (SocketException)
            {
                // Gone or not bindable (e.g. an interface going down): one candidate fewer.
            }
        }

        return sockets;
    }
}
