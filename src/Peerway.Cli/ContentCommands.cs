using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Content;
using Peerway.Content.Blocks;
using Peerway.Content.Car;
using Peerway.Content.Hashing;
using Peerway.Content.UnixFs;
using Peerway.Core.IO;
using Peerway.Core.Multiformats;
using Peerway.Node;
using Peerway.Node.Content;

namespace Peerway.Cli;

/// <summary>IPFS-compatible content commands: add, cat, car export/import, gateway, fetch.</summary>
internal static class ContentCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Add();
        yield return Cat();
        yield return Car();
        yield return Gateway();
        yield return Fetch();
    }

    private static Option<string?> RepoOption() => new("--repo")
    {
        Description = "Repository directory (default: $PEERWAY_REPO, else ~/.peerway).",
    };

    private static ContentRepo OpenRepo(ParseResult parse, Option<string?> repo) =>
        new(ContentRepo.ResolveDirectory(parse.GetValue(repo)));

    internal static Cid ParseCid(string text)
    {
        var error = Cid.TryParse(text, out var cid);
        return error == MultiformatError.None ? cid! : throw new UsageException($"invalid CID '{text}': {error}");
    }

    private static Command Add()
    {
        var path = new Argument<string>("path") { Description = "File or directory to add." };
        var cidVersion = new Option<int>("--cid-version") { Description = "CID version, 0 (default) or 1.", DefaultValueFactory = _ => 0 };
        var rawLeaves = new Option<bool>("--raw-leaves") { Description = "Raw leaf blocks (default: on for CIDv1, off for CIDv0)." };
        var chunkSize = new Option<int>("--chunk-size")
        {
            Description = "Fixed chunk size in bytes (default 262144, at most 1048576).",
            DefaultValueFactory = _ => ImportOptions.DefaultChunkSize,
        };
        var onlyHash = new Option<bool>("--only-hash", "-n") { Description = "Compute the CID without storing blocks." };
        var repo = RepoOption();
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log to stderr how leaves are hashed (the SHA-256 path and its timing)." };
        var command = new Command("add", "Add a file or directory; print only its root CID (as `ipfs add -Q`).")
        {
            path, cidVersion, rawLeaves, chunkSize, onlyHash, repo, verbose,
        };
        command.SetAction(async (parse, ct) =>
        {
            var options = new ImportOptions
            {
                CidVersion = parse.GetValue(cidVersion),
                RawLeaves = parse.GetResult(rawLeaves) is { Implicit: false } ? parse.GetValue(rawLeaves) : null,
                ChunkSize = parse.GetValue(chunkSize),
                Sha256 = Sha256FromEnvironment(),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentOutOfRangeException ex)
            {
                throw new UsageException(ex.Message.Split('\n')[0].Split(" (Parameter")[0]);
            }

            if (parse.GetValue(verbose))
            {
                LogSha256Path(options.Sha256);
            }

            var target = parse.GetValue(path)!;
            var repository = parse.GetValue(onlyHash) ? null : OpenRepo(parse, repo);
            IBlockStore store = repository is null ? new NullBlockStore() : repository.Blocks;
            var importer = new UnixFsImporter(store, options);
            ImportResult result;
            if (Directory.Exists(target))
            {
                result = await AddDirectoryAsync(importer, new DirectoryInfo(target), ct);
            }
            else if (File.Exists(target))
            {
                result = await AddFileAsync(importer, target, ct);
            }
            else
            {
                throw new UsageException($"no such file or directory: {target}");
            }

            repository?.AddRoot(result.Cid);

            await parse.InvocationConfiguration.Output.WriteLineAsync(result.Cid.ToString());
            return CliRunner.Ok;
        });
        return command;
    }

    /// <summary>PEERWAY_SHA256=auto|multibuffer|platform forces how leaves are hashed (tests, benchmarks); unset: auto.</summary>
    private static Sha256Path Sha256FromEnvironment()
    {
        var value = Environment.GetEnvironmentVariable(Sha256PathChooser.EnvironmentVariable);
        return Sha256PathChooser.TryParse(value, out var path)
            ? path
            : throw new UsageException($"{Sha256PathChooser.EnvironmentVariable} must be auto, multibuffer or platform, not '{value}'");
    }

    private static void LogSha256Path(Sha256Path requested)
    {
        using var loggers = NodeLogging.CreateStderrFactory(verbose: true);
        var log = loggers.CreateLogger("Peerway.Cli.Add");
        if (requested == Sha256Path.Auto)
        {
            log.LogInformation("SHA-256 of leaf batches: {Choice}", Sha256PathChooser.MeasuredChoice);
        }
        else
        {
            log.LogInformation("SHA-256 of leaf batches: {Path} (set by {Variable})", requested, Sha256PathChooser.EnvironmentVariable);
        }
    }

    private static async Task<ImportResult> AddFileAsync(UnixFsImporter importer, string file, CancellationToken ct)
    {
        var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
        await using (stream)
        {
            return await importer.ImportFileAsync(stream, ct);
        }
    }

    private static async Task<ImportResult> AddDirectoryAsync(UnixFsImporter importer, DirectoryInfo directory, CancellationToken ct)
    {
        var entries = new List<DirectoryEntry>();
        foreach (var info in directory.EnumerateFileSystemInfos())
        {
            if (info.LinkTarget is not null)
            {
                continue; // symbolic links are not followed
            }

            var child = info is DirectoryInfo sub
                ? await AddDirectoryAsync(importer, sub, ct)
                : await AddFileAsync(importer, info.FullName, ct);
            entries.Add(new DirectoryEntry(info.Name, child));
        }

        return importer.ImportDirectory(entries);
    }

    private static Command Cat()
    {
        var cidArg = new Argument<string>("cid") { Description = "CID of a file (optionally CID/path/in/directory)." };
        var repo = RepoOption();
        var command = new Command("cat", "Write a file's bytes to stdout, verifying every block.") { cidArg, repo };
        command.SetAction(async (parse, ct) =>
        {
            var (cid, segments) = ParsePath(parse.GetValue(cidArg)!);
            var store = OpenRepo(parse, repo).Blocks;
            var exporter = new UnixFsExporter(store);
            var error = exporter.TryResolvePath(cid, segments, out var target);
            if (error != ContentError.None)
            {
                throw new RuntimeFailureException($"cannot resolve {parse.GetValue(cidArg)}: {Describe(error)}");
            }

            if (exporter.TryLoad(target!, out var node) == ContentError.None && node!.IsDirectory)
            {
                throw new RuntimeFailureException($"{parse.GetValue(cidArg)} is a directory: cat a file in it (CID/name), or `peerway fetch` it");
            }

            var stdout = Console.OpenStandardOutput();
            await using (stdout)
            {
                var result = await exporter.ExportFileAsync(target!, stdout, ct);
                if (!result.Ok)
                {
                    throw new RuntimeFailureException($"cannot read {target}: {Describe(result.Error)} at block {result.At}");
                }
            }

            return CliRunner.Ok;
        });
        return command;
    }

    private static (Cid Cid, string[] Segments) ParsePath(string text)
    {
        var trimmed = text.StartsWith("/ipfs/", StringComparison.Ordinal) ? text[6..] : text;
        var parts = trimmed.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            throw new UsageException("missing CID");
        }

        return (ParseCid(parts[0]), parts[1..]);
    }

    internal static string Describe(ContentError error) => error switch
    {
        ContentError.NotFound => "not in the repository (block not found)",
        ContentError.HashMismatch => "a stored block does not match its CID (corrupted repository)",
        ContentError.InvalidUnixFs => "not a UnixFS file (a directory, or inconsistent sizes)",
        ContentError.UnsafeName => "a directory entry has an unsafe name (empty, '.', '..', containing '/' or NUL, or repeated)",
        _ => error.ToString(),
    };

    private static Command Car()
    {
        var car = new Command("car", "Export or import CARv1 archives (every block verified).");
        var cidArg = new Argument<string>("cid") { Description = "Root CID to export." };
        var output = new Option<string>("--output", "-o") { Description = "CAR file to write.", Required = true };
        var repo = RepoOption();
        var export = new Command("export", "Write the DAG under a CID as a CARv1 file.") { cidArg, output, repo };
        export.SetAction(async (parse, ct) =>
        {
            var cid = ParseCid(parse.GetValue(cidArg)!);
            var store = OpenRepo(parse, repo).Blocks;
            var file = parse.GetValue(output)!;
            var temp = file + ".partial";
            var stream = new FileStream(temp, FileMode.Create, FileAccess.Write);
            ContentResult result;
            await using (stream)
            {
                result = await CarWriter.ExportDagAsync(store, cid, stream, ct);
            }

            if (!result.Ok)
            {
                File.Delete(temp);
                throw new RuntimeFailureException($"cannot export {cid}: {Describe(result.Error)} at block {result.At}");
            }

            File.Move(temp, file, overwrite: true);
            return CliRunner.Ok;
        });
        car.Subcommands.Add(export);

        var fileArg = new Argument<string>("file") { Description = "CAR file to import." };
        var importRepo = RepoOption();
        var import = new Command("import", "Import every block of a CARv1 file; print its root CIDs.") { fileArg, importRepo };
        import.SetAction(async (parse, ct) =>
        {
            var file = parse.GetValue(fileArg)!;
            if (!File.Exists(file))
            {
                throw new UsageException($"no such file: {file}");
            }

            var repository = OpenRepo(parse, importRepo);
            var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            await using (stream)
            {
                var (result, header) = await CarWriter.ImportAsync(stream, repository.Blocks, ct);
                if (!result.Ok)
                {
                    throw new RuntimeFailureException($"invalid CAR {file}: {result.Error}");
                }

                foreach (var root in header!.Roots)
                {
                    repository.AddRoot(root);
                    await parse.InvocationConfiguration.Output.WriteLineAsync(root.ToString());
                }
            }

            return CliRunner.Ok;
        });
        car.Subcommands.Add(import);
        return car;
    }

    private static Command Gateway()
    {
        var port = Listening.PortOption("--port", "TCP port.", 8080, allowZero: false);
        var host = new Option<string>("--host") { Description = "Address to listen on (default 127.0.0.1).", DefaultValueFactory = _ => "127.0.0.1" };
        var repo = RepoOption();
        var dhtBootstrap = DhtBootstrapOption("Announce the repository's roots in the DHT through this node (repeatable).");
        var dhtPort = Listening.PortOption("--dht-port", "UDP port of the DHT node (0: any).", 0, allowZero: true);
        var command = new Command("gateway", "Serve the repository as an IPFS trustless HTTP gateway (GET /ipfs/{cid}); with --dht-bootstrap, announce its roots in the DHT.")
        {
            port, host, repo, dhtBootstrap, dhtPort,
        };
        command.SetAction(async (parse, ct) =>
        {
            var p = parse.GetValue(port);
            var dp = parse.GetValue(dhtPort);

            var routers = ParseBootstrap(parse.GetValue(dhtBootstrap));
            var repository = OpenRepo(parse, repo);
            using var loggerFactory = LoggerFactory.Create(b => b.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning));
            var server = new GatewayServer(repository.Blocks, parse.GetValue(host)!, p, loggerFactory.CreateLogger<GatewayServer>());
            await using (server)
            {
                var where = IPAddress.TryParse(parse.GetValue(host), out var ip) ? EndPointParser.Format(new IPEndPoint(ip, p)) : $"{parse.GetValue(host)}:{p}";
                try
                {
                    await server.StartAsync(ct);
                }
                catch (IOException ex)
                {
                    // Kestrel: the address cannot be bound (in use, or not on this host).
                    throw Listening.CannotBind(where, ex);
                }

                var output = parse.InvocationConfiguration.Output;
                await output.WriteLineAsync($"gateway listening on {server.Prefix}");
                await output.FlushAsync(ct);
                if (routers.Count == 0)
                {
                    await WaitForCancellationAsync(ct);
                    return CliRunner.Ok;
                }

                var bindAddress = IPAddress.TryParse(parse.GetValue(host), out var a) ? a : IPAddress.Any;
                var dht = await JoinDhtAsync(new IPEndPoint(bindAddress, dp), routers, loggerFactory, ct);
                await using (dht)
                {
                    var discovery = new ContentDiscovery(dht.Node, loggerFactory.CreateLogger<ContentDiscovery>());
                    using var timer = new PeriodicTimer(ContentDiscovery.ReannounceInterval, TimeProvider.System);
                    do
                    {
                        var roots = repository.Roots();
                        var announced = await discovery.AnnounceAsync(roots, p, ct);
                        await output.WriteLineAsync($"announced {announced} of {roots.Count} roots in the DHT (node {Node.EndPointParser.Format(dht.LocalEndPoint)})");
                        await output.FlushAsync(ct);
                    }
                    while (await timer.WaitForNextTickAsync(ct));
                }
            }

            return CliRunner.Ok;
        });
        return command;
    }

    internal static async Task WaitForCancellationAsync(CancellationToken ct)
    {
        var stopped = new TaskCompletionSource();
        await using (ct.Register(() => stopped.TrySetResult()))
        {
            await stopped.Task;
        }
    }

    private static Command Fetch()
    {
        var cidArg = new Argument<string>("cid") { Description = "CID to fetch." };
        var output = new Option<string>("--output", "-o") { Description = "File or directory to write (a directory must not exist yet).", Required = true };
        var gateways = new Option<string[]>("--gateway")
        {
            Description = "Trustless gateway URL to fetch from (repeatable).",
            AllowMultipleArgumentsPerToken = false,
        };
        var repo = RepoOption();
        var dhtBootstrap = DhtBootstrapOption("Find providers in the DHT through this node (repeatable).");
        var timeout = new Option<int>("--timeout") { Description = "Seconds allowed for the DHT lookup (default 60).", DefaultValueFactory = _ => 60 };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing file at PATH whose content differs; without it it is left untouched (exit 2)." };
        var command = new Command("fetch", "Fetch a file or directory by CID from gateways (given, or found in the DHT), verifying every block, and write it to PATH.")
        {
            cidArg, output, gateways, repo, dhtBootstrap, timeout, overwrite,
        };
        command.SetAction(async (parse, ct) =>
        {
            var cid = ParseCid(parse.GetValue(cidArg)!);
            var urls = new List<Uri>();
            foreach (var g in parse.GetValue(gateways) ?? [])
            {
                if (!Uri.TryCreate(g, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                {
                    throw new UsageException($"invalid gateway URL '{g}'");
                }

                urls.Add(uri);
            }

            var routers = ParseBootstrap(parse.GetValue(dhtBootstrap));
            if (urls.Count == 0 && routers.Count == 0)
            {
                throw new UsageException("no source: give --gateway URL or --dht-bootstrap HOST:PORT");
            }

            var seconds = parse.GetValue(timeout);
            if (seconds is < 1 or > 86_400)
            {
                throw new UsageException($"invalid --timeout {seconds}");
            }

            if (routers.Count > 0)
            {
                using var loggerFactory = LoggerFactory.Create(b => b.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning));
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
                deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
                var dht = await JoinDhtAsync(new IPEndPoint(IPAddress.Any, 0), routers, loggerFactory, deadline.Token);
                await using (dht)
                {
                    var found = await new ContentDiscovery(dht.Node).FindGatewaysAsync(cid, deadline.Token);
                    urls.AddRange(found);
                }

                if (urls.Count == 0)
                {
                    throw new RuntimeFailureException($"no provider of {cid} found in the DHT");
                }
            }

            await FetchToPathAsync(OpenRepo(parse, repo), cid, urls, parse.GetValue(output)!, parse.GetValue(overwrite), parse.InvocationConfiguration.Error, ct);
            return CliRunner.Ok;
        });
        return command;
    }

    private static Option<string[]> DhtBootstrapOption(string description) => new("--dht-bootstrap")
    {
        Description = description + " HOST:PORT.",
        AllowMultipleArgumentsPerToken = false,
    };

    private static List<HostPort> ParseBootstrap(string[]? values)
    {
        var list = new List<HostPort>();
        foreach (var text in values ?? [])
        {
            if (!EndPointParser.TryParse(text, out var ep, out var error))
            {
                throw new UsageException($"--dht-bootstrap: {error}");
            }

            list.Add(ep!);
        }

        return list;
    }

    /// <summary>Starts a DHT node and bootstraps it; no answering router is a runtime failure.</summary>
    private static async Task<DhtHost> JoinDhtAsync(IPEndPoint bind, IReadOnlyList<HostPort> routers, ILoggerFactory loggers, CancellationToken ct)
    {
        var resolved = new List<IPEndPoint>();
        foreach (var router in routers)
        {
            resolved.Add(await DhtCli.ResolveAsync(router, ct));
        }

        var host = Listening.Bind(bind.Address, bind.Port, () => DhtHost.Start(new DhtHostOptions { Bind = bind }, loggers));

        try
        {
            if (await host.JoinAsync(resolved, ct) == 0)
            {
                throw new RuntimeFailureException($"no DHT bootstrap node answered ({string.Join(", ", resolved)})");
            }

            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <summary>Why a fetch failed, in words: no gateway reachable, or which gateways lacked the block.</summary>
    private static string DescribeFetchFailure(Cid cid, ContentResult result, GatewayBlockSource source)
    {
        var forged = source.Rejected > 0 ? $" ({source.Rejected} forged blocks rejected)" : string.Empty;
        if (result.Error != ContentError.NotFound || source.LastMisses.Count == 0)
        {
            return $"cannot fetch {cid}: {Describe(result.Error)} at block {result.At}{forged}";
        }

        return source.LastMisses.All(m => m.Unreachable)
            ? $"cannot fetch {cid}: no gateway could be reached ({string.Join("; ", source.LastMisses.Select(m => $"{m.Gateway}: {m.Reason}"))})"
            : $"cannot fetch {cid}: no gateway has block {result.At} ({string.Join("; ", source.LastMisses)}){forged}";
    }

    internal static async Task FetchToPathAsync(ContentRepo repository, Cid cid, IReadOnlyList<Uri> gateways, string file, bool overwrite, TextWriter warnings, CancellationToken ct)
    {
        // A link is not followed to see what it points to: the writer refuses it (OutputConflictException).
        if (Directory.Exists(file) && new FileInfo(file).LinkTarget is null)
        {
            throw new UsageException($"output {file} is an existing directory");
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var source = new GatewayBlockSource(http, gateways);
        var result = await DagFetcher.FetchDagAsync(source, repository.Blocks, cid, ct);
        if (!result.Ok)
        {
            throw new RuntimeFailureException(DescribeFetchFailure(cid, result, source));
        }

        await WriteTreeAsync(repository, cid, file, overwrite, warnings, ct);
    }

    /// <summary>Writes a DAG that is in the repository to <paramref name="file"/> (a file or a directory tree).</summary>
    internal static async Task WriteTreeAsync(ContentRepo repository, Cid cid, string file, bool overwrite, TextWriter warnings, CancellationToken ct)
    {
        TreeWriteResult written;
        try
        {
            written = await UnixFsTreeWriter.WriteAsync(repository.Blocks, cid, file, overwrite, ct);
        }
        catch (Exception ex) when (ex is (IOException or UnauthorizedAccessException) and not OutputConflictException)
        {
            throw new RuntimeFailureException($"cannot write {file}: {ex.Message}");
        }

        if (!written.Ok)
        {
            throw new RuntimeFailureException($"cannot write {cid}: {Describe(written.Error)}"
                + (written.Path is null ? string.Empty : $" at {written.Path}") + (written.At is null ? string.Empty : $" (block {written.At})"));
        }

        foreach (var link in written.SkippedSymlinks)
        {
            await warnings.WriteLineAsync($"peerway: skipped symbolic link {link} (links from the network are not created)");
        }
    }
}
