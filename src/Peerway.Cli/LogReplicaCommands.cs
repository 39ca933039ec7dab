using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Dht;
using Peerway.Dht.Log;
using Peerway.Net;
using Peerway.Node;

namespace Peerway.Cli;

/// <summary>
/// <c>peerway log serve DIR</c> and <c>peerway log clone &lt;public key&gt;/&lt;name&gt; -o DIR [--follow]</c>: a log
/// replicated over the DHT (<see cref="LogReplica"/>). Each runs a DHT node on --bind/--port and a TCP log server on
/// the same port number; heads are BEP 44 items, holders announce themselves with BEP 5.
/// </summary>
internal static class LogReplicaCommands
{
    private sealed record ReplicaSettings(DhtCommandSettings Dht, int Port, TimeSpan Interval, TimeSpan Republish);

    private sealed class ReplicaOptions
    {
        public DhtCommonOptions Common { get; } = new(withBootstrap: true);

        public Option<int> Port { get; } = Listening.PortOption("--port", "UDP port of the DHT node and TCP port of the log server (default 0, a free one).", 0, allowZero: true);

        public Option<string> Interval { get; } = new("--interval") { Description = "Seconds between looks at the head (DHT, or the directory for the owner) (default 30)." };

        public Option<string> Republish { get; } = new("--republish") { Description = "Seconds between puts of the head and announces (default 600)." };

        public void AddTo(Command command)
        {
            Common.AddTo(command);
            command.Options.Add(Port);
            command.Options.Add(Interval);
            command.Options.Add(Republish);
        }

        public ReplicaSettings Read(ParseResult parse) =>
            Read(Common.Read(parse), parse);

        private ReplicaSettings Read(DhtCommandSettings dht, ParseResult parse) =>
            new(dht, dht.BindPort ?? parse.GetValue(Port), Seconds(parse.GetValue(Interval), "--interval", 30), Seconds(parse.GetValue(Republish), "--republish", 600));

        private static TimeSpan Seconds(string? text, string option, double fallback)
        {
            if (text is null) return TimeSpan.FromSeconds(fallback);
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) || !double.IsFinite(s) || s <= 0 || s > 86_400)
            {
                throw new UsageException($"{option} '{text}' is not a number of seconds in (0, 86400]");
            }

            return TimeSpan.FromSeconds(s);
        }
    }

    public static Command CreateServe()
    {
        var dir = new Argument<string>("dir") { Description = "The log's directory (the owner's, or a clone)." };
        var options = new ReplicaOptions();
        var command = new Command("serve", "Serve a log: put its head in the DHT, announce this holder, answer followers; the owner's appends are published as they come, a clone keeps following. First line: 'serving <public key>/<name> length <n> listening <ip>:<port>'.") { dir };
        options.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var log = LogCommands.Open(parse.GetValue(dir)!);
            var settings = options.Read(parse);
            using var key = log.OwnerKey();
            return await RunAsync(parse, settings, log, follow: key is null, cloneOnly: false, ct);
        });
        return command;
    }

    public static Command CreateClone()
    {
        var id = new Argument<string>("log") { Description = "<public key>/<name>: the owner's ed25519 public key (64 hex digits), a slash and the log's name." };
        var output = new Option<string>("--output", "-o") { Description = "Directory of the copy (created; an earlier copy of the same log is resumed).", Required = true };
        var follow = new Option<bool>("--follow") { Description = "Keep following (and serving) until interrupted; one 'length <n> root <64 hex>' line per new head." };
        var options = new ReplicaOptions();
        var command = new Command("clone", "Copy a log found through the DHT, every entry verified against the owner's signed head; prints 'cloned <n> entries root <64 hex>'.") { id, output, follow };
        options.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (publicKey, name) = ParseLogId(parse.GetValue(id)!);
            var settings = options.Read(parse);
            var log = OpenOrCreateCopy(parse.GetValue(output)!, publicKey, name);
            return await RunAsync(parse, settings, log, follow: true, cloneOnly: !parse.GetValue(follow), ct);
        });
        return command;
    }

    private static (byte[] PublicKey, string Name) ParseLogId(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var hex = slash < 0 ? text : text[..slash];
        var name = slash < 0 ? string.Empty : text[(slash + 1)..];
        if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit)) throw new UsageException($"'{text}' is not <64 hex public key>/<name>");
        if (name.Length == 0 || System.Text.Encoding.UTF8.GetByteCount(name) > LogHead.MaxNameLength)
        {
            throw new UsageException($"'{text}': a log name is 1 to {LogHead.MaxNameLength} bytes");
        }

        return (Convert.FromHexString(hex), name);
    }

    private static LogDirectory OpenOrCreateCopy(string dir, byte[] publicKey, string name)
    {
        try
        {
            if (File.Exists(Path.Combine(dir, "log.pub")))
            {
                var existing = LogCommands.Open(dir);
                if (!existing.PublicKey.AsSpan().SequenceEqual(publicKey) || existing.Name != name) throw new UsageException($"'{dir}' holds another log");
                return existing;
            }

            if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any()) throw new UsageException($"'{dir}' is not empty");
            return LogDirectory.CreateReplica(dir, name, publicKey);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new RuntimeFailureException($"cannot create '{dir}': {ex.Message}");
        }
    }

    private static async Task<int> RunAsync(ParseResult parse, ReplicaSettings settings, LogDirectory log, bool follow, bool cloneOnly, CancellationToken ct)
    {
        var routers = await DhtCli.ResolveBootstrapAsync(settings.Dht, ct);
        var bind = settings.Dht.Bind ?? (routers.Count > 0 && routers[0].AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any);
        var output = parse.InvocationConfiguration.Output;
        using var loggers = NodeLogging.CreateStderrFactory(settings.Dht.Verbose);
        var dhtOptions = new DhtOptions { QueryTimeout = TimeSpan.FromSeconds(Math.Min(2, settings.Dht.TimeoutSeconds / 2)) };
        await using var host = Listening.Bind(bind, settings.Port, () => DhtHost.Start(new DhtHostOptions { Bind = new IPEndPoint(bind, settings.Port), Dht = dhtOptions }, loggers));
        var replicaOptions = new LogReplicaOptions { PollInterval = settings.Interval, RepublishInterval = settings.Republish };
        await using var replica = new LogReplica(log, host.Node, new TcpStreamTransport(), TimeProvider.System, replicaOptions, loggers.CreateLogger<LogReplica>());
        var listening = cloneOnly ? null : await ListenAsync(replica, bind, host.LocalEndPoint.Port, ct);
        var logId = $"{Convert.ToHexStringLower(log.PublicKey)}/{log.Name}";

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(settings.Dht.Timeout);
        try
        {
            await DhtCli.BootstrapOrFailAsync(host, routers, deadline.Token);
            if (!cloneOnly && !follow)
            {
                await WriteAsync(output, $"serving {logId} length {replica.Length} listening {EndPointParser.Format(listening!)}", ct);
            }
            else
            {
                var synced = await CloneAsync(replica, settings.Interval, deadline.Token);
                var root = Convert.ToHexStringLower(log.Root(synced.Length));
                await WriteAsync(output, string.Create(CultureInfo.InvariantCulture, $"cloned {synced.Length} entries root {root}"), ct);
                if (cloneOnly) return CliRunner.Ok;
                await WriteAsync(output, $"serving {logId} length {replica.Length} listening {EndPointParser.Format(listening!)}", ct);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new RuntimeFailureException($"timed out after {settings.Dht.TimeoutSeconds:0.###} s: no head of {logId} found, or no holder served its entries");
        }

        // Until SIGINT/SIGTERM: publish and answer; a clone follows, one line per new head.
        await replica.RunAsync(follow, null,
            result =>
            {
                if (result is { Status: LogSyncStatus.Synced, Head: { } head }) WriteLine(output, $"length {head.Length} root {Convert.ToHexStringLower(head.Root)}");
                else if (result is { Status: LogSyncStatus.Fork, Fork: { } fork }) WriteLine(output, $"fork: two signed heads of length {fork.First.Length} with different roots");
            },
            (head, stored) =>
            {
                if (head is not null) WriteLine(output, $"published length {head.Length} on {stored} nodes");
            },
            ct);
        return CliRunner.Ok;
    }

    /// <summary>Syncs until the copy holds the newest head found (or the deadline).</summary>
    private static async Task<LogSyncResult> CloneAsync(LogReplica replica, TimeSpan interval, CancellationToken ct)
    {
        while (true)
        {
            var result = await replica.SyncAsync(null, ct);
            if (result.Status == LogSyncStatus.Fork) throw new RuntimeFailureException($"fork: two signed heads of length {result.Fork!.First.Length} with different roots");
            if (result.Status is LogSyncStatus.Synced or LogSyncStatus.UpToDate) return result;
            await Task.Delay(interval, ct);
        }
    }

    /// <summary>The log server on the DHT's port number when that TCP port is free, else on any port (announced either way).</summary>
    private static async Task<IPEndPoint> ListenAsync(LogReplica replica, IPAddress bind, int port, CancellationToken ct)
    {
        try
        {
            return await replica.ListenAsync(new IPEndPoint(bind, port), ct);
        }
        catch (IOException)
        {
            return await replica.ListenAsync(new IPEndPoint(bind, 0), ct);
        }
    }

    private static async Task WriteAsync(TextWriter output, string line, CancellationToken ct)
    {
        await output.WriteLineAsync(line);
        await output.FlushAsync(ct);
    }

    private static void WriteLine(TextWriter output, string line)
    {
        lock (output)
        {
            output.WriteLine(line);
            output.Flush();
        }
    }
}
