using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;
using Peerway.Libp2p;
using Peerway.Node;
using Peerway.Node.Content;
using Peerway.Node.Ipfs;

namespace Peerway.Cli;

/// <summary>
/// <c>peerway ipfs id|serve|ping</c>: the repository's libp2p peer (issue 19). <c>serve</c> prints
/// <c>ipfs: peer &lt;PeerId&gt; listening &lt;multiaddr&gt;/p2p/&lt;PeerId&gt;</c> first, then one line per peer that connects
/// and identifies; <c>ping</c> dials a multiaddr and prints round trips, as kubo's <c>ipfs ping</c>.
/// </summary>
internal static class IpfsCommands
{
    public static Command Create()
    {
        var ipfs = new Command("ipfs", "An IPFS peer over libp2p (TCP, Noise, Yamux, identify, ping, Bitswap, the IPFS Kademlia DHT).");
        ipfs.Subcommands.Add(CreateId());
        ipfs.Subcommands.Add(CreateServe());
        ipfs.Subcommands.Add(CreatePing());
        ipfs.Subcommands.Add(CreateGet());
        ipfs.Subcommands.Add(CreateFindProviders());
        return ipfs;
    }

    private static Option<string?> RepoOption() => new("--repo") { Description = "Repository directory (default: $PEERWAY_REPO, else ~/.peerway); its libp2p.key is the identity." };

    private static PeerKey LoadKey(string? repo)
    {
        try
        {
            return IpfsPeer.LoadOrCreateKey(ContentRepo.ResolveDirectory(repo));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new RuntimeFailureException($"cannot read the peer key: {ex.Message}");
        }
    }

    private static Option<string[]> BootstrapOption() => new("--bootstrap") { Description = "A peer of the IPFS DHT to join through: /ip4/…/tcp/…/p2p/<PeerId> (repeatable)." };

    private static List<Multiaddr> ParseBootstrap(string[]? values)
    {
        var list = new List<Multiaddr>();
        foreach (var text in values ?? [])
        {
            var a = ParseAddress(text, "--bootstrap");
            if (!a.TryGetTcpEndPoint(out _) || a.PeerId is null) throw new UsageException($"--bootstrap '{a}' is not an /ip4|ip6/…/tcp/…/p2p/<PeerId> address");
            list.Add(a);
        }

        return list;
    }

    private static Multiaddr ParseAddress(string text, string what) =>
        Multiaddr.TryParse(text, out var a) == Libp2pError.None ? a! : throw new UsageException($"{what} '{text}' is not a multiaddr");

    private static Command CreateId()
    {
        var repo = RepoOption();
        var command = new Command("id", "Print the repository's peer id.") { repo };
        command.SetAction(async (parse, ct) =>
        {
            using var key = LoadKey(parse.GetValue(repo));
            await parse.InvocationConfiguration.Output.WriteLineAsync(key.Id.ToString());
            return CliRunner.Ok;
        });
        return command;
    }

    private static Command CreateServe()
    {
        var repo = RepoOption();
        var listen = new Option<string>("--listen") { Description = "Multiaddr to listen on.", DefaultValueFactory = _ => IpfsPeer.DefaultListen };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log connection events to stderr." };
        var bootstrap = BootstrapOption();
        var command = new Command("serve", "Run the IPFS peer until SIGINT/SIGTERM; prints its address, then connected and identified peers.") { repo, listen, verbose, bootstrap };
        command.SetAction(async (parse, ct) =>
        {
            var address = ParseAddress(parse.GetValue(listen)!, "--listen");
            if (!address.TryGetTcpEndPoint(out _)) throw new UsageException($"--listen '{address}' is not an /ip4|ip6/…/tcp/… address");
            using var loggers = NodeLogging.CreateStderrFactory(parse.GetValue(verbose));
            IpfsPeer peer;
            try
            {
                peer = IpfsPeer.Open(ContentRepo.ResolveDirectory(parse.GetValue(repo)), loggers);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                throw new RuntimeFailureException($"cannot read the peer key: {ex.Message}");
            }

            await using (peer)
            {
                var output = parse.InvocationConfiguration.Output;
                var events = new System.Threading.Channels.UnboundedChannelOptions { SingleReader = true };
                var lines = System.Threading.Channels.Channel.CreateUnbounded<string>(events);
                peer.Host.Connected += c =>
                {
                    var info = c.LatestIdentify;
                    lines.Writer.TryWrite(info is null
                        ? $"connected {c.RemotePeer} {c.RemoteAddress}"
                        : $"identified {c.RemotePeer} {info.AgentVersion} {string.Join(',', info.Protocols)}");
                };
                try
                {
                    await peer.StartAsync(address, ct);
                }
                catch (SocketException ex)
                {
                    throw Listening.CannotBind(address.ToString(), ex);
                }

                var bootstraps = ParseBootstrap(parse.GetValue(bootstrap));
                foreach (var a in peer.Host.ListenAddresses) await output.WriteLineAsync($"ipfs: peer {peer.Host.PeerId} listening {a}");
                await output.FlushAsync(ct);
                if (bootstraps.Count > 0)
                {
                    // Join the IPFS DHT and announce every root of the repository as provided by this peer.
                    var reached = await peer.Dht.BootstrapAsync(bootstraps, ct);
                    await output.WriteLineAsync($"dht: {reached} of {bootstraps.Count} bootstrap peers answered; routing table {peer.Dht.RoutingTableSize}");
                    foreach (var root in peer.Repo.Roots())
                    {
                        var stored = await peer.Dht.ProvideAsync(root, ct);
                        await output.WriteLineAsync($"provided {root} to {stored} peers");
                    }

                    // Provider records expire after 48 h: announce the roots again every 22 h (kubo's reprovider).
                    peer.Dht.StartReproviding(peer.Repo.Roots);
                    await output.FlushAsync(ct);
                }
                try
                {
                    await foreach (var line in lines.Reader.ReadAllAsync(ct))
                    {
                        await output.WriteLineAsync(line);
                        await output.FlushAsync(ct);
                    }
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    // SIGINT/SIGTERM: the normal way to stop a server.
                }
            }

            return CliRunner.Ok;
        });
        return command;
    }

    private static Command CreatePing()
    {
        var target = new Argument<string>("multiaddr") { Description = "The peer: /ip4/…/tcp/…/p2p/<PeerId> (the peer id is checked when given)." };
        var count = new Option<int>("--count", "-n") { Description = "Round trips.", DefaultValueFactory = _ => 3 };
        var repo = RepoOption();
        var timeout = new Option<int>("--timeout") { Description = "Seconds before giving up.", DefaultValueFactory = _ => 30 };
        var command = new Command("ping", "Dial a libp2p peer, print what it identifies as and N ping round trips.") { target, count, repo, timeout };
        command.SetAction(async (parse, ct) =>
        {
            var address = ParseAddress(parse.GetValue(target)!, "multiaddr");
            if (!address.TryGetTcpEndPoint(out _)) throw new UsageException($"'{address}' is not an /ip4|ip6/…/tcp/… address");
            var n = parse.GetValue(count);
            if (n is < 1 or > 1000) throw new UsageException("--count is 1 to 1000");
            var seconds = parse.GetValue(timeout);
            if (seconds < 1) throw new UsageException("--timeout is at least 1 second");
            using var key = LoadKey(parse.GetValue(repo));
            using var loggers = NodeLogging.CreateStderrFactory(false);
            await using var host = new Libp2pHost(key, new Peerway.Net.TcpStreamTransport(), null, TimeProvider.System, loggers.CreateLogger("libp2p"));
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
            var output = parse.InvocationConfiguration.Output;
            try
            {
                await using var connection = await host.DialAsync(address, deadline.Token);
                var info = await connection.Identify.WaitAsync(deadline.Token);
                await output.WriteLineAsync(info is null
                    ? $"peer {connection.RemotePeer} (no identify)"
                    : $"peer {connection.RemotePeer} agent {info.AgentVersion} protocols {string.Join(',', info.Protocols)}");
                for (var i = 0; i < n; i++)
                {
                    var rtt = await connection.PingAsync(TimeProvider.System, deadline.Token);
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"ping {rtt.TotalMilliseconds:0.###} ms"));
                }
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                throw new RuntimeFailureException($"no answer from {address} within {seconds} s");
            }
            catch (Exception ex) when (ex is IOException or SocketException)
            {
                throw new RuntimeFailureException($"cannot reach {address}: {ex.Message}");
            }

            return CliRunner.Ok;
        });
        return command;
    }

    private static Command CreateGet()
    {
        var target = new Argument<string>("cid") { Description = "The root of the file or directory to fetch." };
        var output = new Option<string>("--output", "-o") { Description = "File or directory to write (a directory must not exist yet).", Required = true };
        var peers = new Option<string[]>("--peer") { Description = "A peer to fetch from: /ip4/…/tcp/…[/p2p/<PeerId>] (repeatable).", AllowMultipleArgumentsPerToken = false };
        var repo = RepoOption();
        var timeout = new Option<int>("--timeout") { Description = "Seconds before giving up.", DefaultValueFactory = _ => 120 };
        var parallel = new Option<int>("--parallel") { Description = "Blocks wanted at once.", DefaultValueFactory = _ => 64 };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing file whose content differs." };
        var bootstrap = BootstrapOption();
        var command = new Command("get", "Fetch a DAG by Bitswap from the given peers and/or providers found in the IPFS DHT, verify every block, write the file or directory.") { target, output, peers, repo, timeout, parallel, overwrite, bootstrap };
        command.SetAction(async (parse, ct) =>
        {
            var cid = ContentCommands.ParseCid(parse.GetValue(target)!);
            var addresses = (parse.GetValue(peers) ?? []).Select(p => ParseAddress(p, "--peer")).ToList();
            var bootstraps = ParseBootstrap(parse.GetValue(bootstrap));
            if (addresses.Count == 0 && bootstraps.Count == 0) throw new UsageException("give at least one --peer or --bootstrap");
            foreach (var a in addresses)
            {
                if (!a.TryGetTcpEndPoint(out _)) throw new UsageException($"--peer '{a}' is not an /ip4|ip6/…/tcp/… address");
            }

            var seconds = parse.GetValue(timeout);
            if (seconds < 1) throw new UsageException("--timeout is at least 1 second");
            var width = parse.GetValue(parallel);
            if (width is < 1 or > 1024) throw new UsageException("--parallel is 1 to 1024");
            var file = parse.GetValue(output)!;
            if (Directory.Exists(file) && new FileInfo(file).LinkTarget is null) throw new UsageException($"output {file} is an existing directory");
            using var loggers = NodeLogging.CreateStderrFactory(false);
            IpfsPeer peer;
            try
            {
                peer = IpfsPeer.Open(ContentRepo.ResolveDirectory(parse.GetValue(repo)), loggers);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                throw new RuntimeFailureException($"cannot open the repository: {ex.Message}");
            }

            await using (peer)
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
                deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
                using var streaming = StreamingFileOutput.TryCreate(file, cid);
                IpfsFetchResult fetched;
                try
                {
                    if (bootstraps.Count > 0)
                    {
                        await peer.Dht.BootstrapAsync(bootstraps, deadline.Token);
                        addresses.AddRange(await peer.FindProviderAddressesAsync(cid, 20, deadline.Token));
                        if (addresses.Count == 0) throw new RuntimeFailureException($"cannot fetch {cid}: no provider found in the DHT");
                    }

                    fetched = await peer.FetchAsync(cid, addresses, width, streaming is null ? null : streaming.Accept, deadline.Token);
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
                {
                    throw new RuntimeFailureException($"cannot fetch {cid}: not complete within {seconds} s");
                }

                var stderr = parse.InvocationConfiguration.Error;
                foreach (var miss in fetched.Unreachable) await stderr.WriteLineAsync($"peerway: cannot reach {miss}");
                if (!fetched.Result.Ok)
                {
                    throw new RuntimeFailureException(fetched.Peers.Count == 0
                        ? $"cannot fetch {cid}: no peer could be reached"
                        : $"cannot fetch {cid}: no peer has block {fetched.Result.At} ({ContentCommands.Describe(fetched.Result.Error)})");
                }

                // A new single file was written as its blocks arrived; anything else is exported from the repository now.
                if (streaming is null || !streaming.TryCommit())
                {
                    await ContentCommands.WriteTreeAsync(peer.Repo, cid, file, parse.GetValue(overwrite), stderr, ct);
                }

                var from = fetched.Peers.Where(p => p.Blocks > 0).ToList();
                await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"fetched {cid}: {from.Sum(p => p.Blocks)} blocks, {from.Sum(p => p.Bytes)} bytes from {from.Count} peers"));
                foreach (var p in fetched.Peers.Where(p => p.Unwanted > 0))
                {
                    await stderr.WriteLineAsync($"peerway: {p.Peer} sent {p.Unwanted} blocks nobody wanted");
                }
            }

            return CliRunner.Ok;
        });
        return command;
    }

    /// <summary>
    /// <c>ipfs get</c> of a single file to a path where nothing is yet: the file is written into a temporary sibling as
    /// its blocks arrive, each at its offset (<see cref="UnixFsFileAssembler"/>; every block already verified against its
    /// CID), and renamed into place after the last one, so no export pass reads the whole file back from the repository
    /// after the transfer. Not synced, as kubo's <c>ipfs get</c> does not sync either. When the DAG is not a single file,
    /// a write fails or something appeared at the path meanwhile, nothing is committed and the caller exports from the
    /// repository as before (with its checks of what is at the path); the temporary file is removed on dispose.
    /// </summary>
    private sealed class StreamingFileOutput : IDisposable
    {
        private readonly string _target;
        private readonly string _temp;
        private readonly SafeFileHandle _handle;
        private readonly UnixFsFileAssembler _assembler;
        private bool _failed;
        private bool _committed;

        private StreamingFileOutput(string target, string temp, SafeFileHandle handle, Cid root)
        {
            _target = target;
            _temp = temp;
            _handle = handle;
            _assembler = new UnixFsFileAssembler(root, Write);
        }

        /// <summary>An output for a new file at <paramref name="file"/>, or null when something is there already (a file to compare or complete, a link, a directory) or the temporary file cannot be made.</summary>
        public static StreamingFileOutput? TryCreate(string file, Cid root)
        {
            var target = Path.GetFullPath(file);
            // lstat as well as stat: a dangling link is something of the user's at that path.
            if (Path.Exists(target) || new FileInfo(target).LinkTarget is not null) return null;
            var directory = Path.GetDirectoryName(target);
            if (directory is null || !Directory.Exists(directory)) return null;
            var temp = Path.Combine(directory, "." + Path.GetFileName(target) + "." + Guid.NewGuid().ToString("N")[..8] + ".partial");
            try
            {
                return new StreamingFileOutput(target, temp, File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write), root);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return null; // the export path reports what is wrong with the output
            }
        }

        public void Accept(Cid cid, byte[] block)
        {
            if (!_failed) _assembler.Accept(cid, block);
        }

        private void Write(long offset, ReadOnlySpan<byte> data)
        {
            if (_failed) return;
            try
            {
                RandomAccess.Write(_handle, data, offset);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _failed = true; // the export path writes the file again and reports the error if it recurs
            }
        }

        /// <summary>Renames the complete file into place; false when it is not complete or the path is no longer free.</summary>
        public bool TryCommit()
        {
            if (_failed || !_assembler.IsComplete) return false;
            _handle.Dispose();
            try
            {
                // No overwrite: whatever appeared at the path meanwhile is not replaced (link(2) fails with EEXIST).
                File.Move(_temp, _target, overwrite: false);
            }
            catch (IOException)
            {
                return false;
            }

            _committed = true;
            return true;
        }

        public void Dispose()
        {
            _handle.Dispose();
            if (!_committed) File.Delete(_temp);
        }
    }

    private static Command CreateFindProviders()
    {
        var target = new Argument<string>("cid") { Description = "The content to find providers of." };
        var bootstrap = BootstrapOption();
        bootstrap.Required = true;
        var max = new Option<int>("--max") { Description = "Providers to find at most.", DefaultValueFactory = _ => 20 };
        var repo = RepoOption();
        var timeout = new Option<int>("--timeout") { Description = "Seconds before giving up.", DefaultValueFactory = _ => 60 };
        var command = new Command("findprovs", "Find providers of a CID in the IPFS DHT (as kubo's `ipfs routing findprovs`): prints `<PeerId> <multiaddr,…>` per provider.") { target, bootstrap, max, repo, timeout };
        command.SetAction(async (parse, ct) =>
        {
            var cid = ContentCommands.ParseCid(parse.GetValue(target)!);
            var bootstraps = ParseBootstrap(parse.GetValue(bootstrap));
            var limit = parse.GetValue(max);
            if (limit is < 1 or > 1000) throw new UsageException("--max is 1 to 1000");
            var seconds = parse.GetValue(timeout);
            if (seconds < 1) throw new UsageException("--timeout is at least 1 second");
            using var key = LoadKey(parse.GetValue(repo));
            using var loggers = NodeLogging.CreateStderrFactory(false);
            await using var host = new Libp2pHost(key, new Peerway.Net.TcpStreamTransport(), null, TimeProvider.System, loggers.CreateLogger("libp2p"));
            await using var dht = new Peerway.Libp2p.Kad.KadDht(host, new Peerway.Libp2p.Kad.KadDhtOptions { ClientMode = true }, loggers.CreateLogger("kad"));
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
            IReadOnlyList<Peerway.Libp2p.Kad.KadProvider> found;
            try
            {
                if (await dht.BootstrapAsync(bootstraps, deadline.Token) == 0) throw new RuntimeFailureException("no bootstrap peer answered");
                found = await dht.FindProvidersAsync(cid, limit, deadline.Token);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                throw new RuntimeFailureException($"no provider of {cid} found within {seconds} s");
            }

            if (found.Count == 0) throw new RuntimeFailureException($"no provider of {cid} found");
            foreach (var p in found)
            {
                await parse.InvocationConfiguration.Output.WriteLineAsync($"{p.Peer} {string.Join(',', p.Addresses)}");
            }

            return CliRunner.Ok;
        });
        return command;
    }
}
