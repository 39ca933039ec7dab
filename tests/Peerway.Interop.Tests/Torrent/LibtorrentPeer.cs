using Peerway.Interop.Tests.Infrastructure;
using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// libtorrent-rasterbar 2.0 sessions for the interop tests, each one `lt-peer.py` process (a hard --timeout inside, a
/// lifetime kill outside, killed with its children on dispose), plus the shared temp directory and Peerway processes of
/// <see cref="TorrentInterop"/>. Everything listens on 127.0.0.1.
/// </summary>
internal sealed partial class LibtorrentPeer : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(150);

    /// <summary>lt-peer.py's own limit (it exits 3): below <see cref="Deadline"/>, so a hung session is reported, not waited on.</summary>
    private const int DriverTimeoutSeconds = 140;

    /// <summary>How long a seeding session may take to check its files and say "finished" before it is replaced.</summary>
    public static readonly TimeSpan SeedingReady = TimeSpan.FromSeconds(30);

    private readonly List<ExternalProcess> _sessions = [];
    private readonly string _driver;
    private readonly ITestOutputHelper? _output;

    public LibtorrentPeer(string name, ITestOutputHelper? output = null)
    {
        _driver = LibtorrentTool.Require();
        _output = output;
        Env = new TorrentInterop("lt-" + name);
    }

    /// <summary>What the seeder replacements said (also written to the test output when one was given).</summary>
    public List<string> Notes { get; } = [];

    public TorrentInterop Env { get; }

    public static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    /// <summary>`lt-peer.py create`: a .torrent made by libtorrent's create_torrent (hybrid v1+v2 unless a flag says otherwise).</summary>
    public async Task<(string? V1, string? V2)> CreateAsync(string source, string torrent, params string[] flags)
    {
        await using var p = ExternalProcess.Start(LibtorrentTool.Python, [_driver, "create", source, torrent, .. flags], Deadline);
        var code = await p.WaitForExitAsync(Deadline);
        Assert.True(code == 0, $"lt-peer.py create failed: {p.Stderr}");
        string? Hash(string kind) => p.StdoutLines.FirstOrDefault(l => l.StartsWith(kind + " ", StringComparison.Ordinal))?[(kind.Length + 1)..];
        return (Hash("v1"), Hash("v2"));
    }

    /// <summary>
    /// `lt-peer.py run`: a libtorrent session on 127.0.0.1:<paramref name="port"/>; returns once it is listening.
    /// </summary>
    public async Task<ExternalProcess> RunAsync(int port, params string[] args)
    {
        var p = ExternalProcess.Start(LibtorrentTool.Python,
            [_driver, "run", "--listen", "127.0.0.1:" + P(port), "--timeout", P(DriverTimeoutSeconds), .. args], Deadline + TimeSpan.FromSeconds(30));
        _sessions.Add(p);
        await p.WaitForStdoutAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), Deadline);
        return p;
    }

    /// <summary>
    /// `lt-peer.py run` for a session that holds the whole content (<paramref name="args"/> name the torrent and its
    /// save path): returns once it says "finished", i.e. it has checked its files and seeds. A check of the few MiB the
    /// tests use takes well under a second; now and then (about once in a hundred sessions in CI) python3-libtorrent
    /// 2.0.8 prints "listening" and then nothing, stuck in checking_files until its own timeout, its network thread never
    /// answering the connections the kernel accepted for it. Such a session is not a seeder, and what the tests check is
    /// a client downloading from a seeder, so it is replaced — at most twice, and said in <see cref="Notes"/>.
    /// </summary>
    public async Task<ExternalProcess> SeedAsync(int port, params string[] args)
    {
        for (var attempt = 1; ; attempt++)
        {
            var session = await RunAsync(port, args);
            try
            {
                await session.WaitForStdoutAsync(l => l == "finished", SeedingReady);
                return session;
            }
            catch (TimeoutException ex) when (attempt < 3)
            {
                var note = $"libtorrent seeder on port {P(port)}, attempt {attempt}: not seeding within {SeedingReady.TotalSeconds} s; starting it again ({ex.Message})";
                Notes.Add(note);
                _output?.WriteLine(note);
                _sessions.Remove(session);
                await session.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// The session's "peer &lt;ip:port&gt; &lt;flags&gt; client=..." line for <paramref name="port"/> once the BitTorrent
    /// handshake is done (the client is named, from Peerway's peer id "-PW0001-" or its BEP 10 "v").
    /// </summary>
    public static async Task<string> HandshakenPeerAsync(ExternalProcess session, int port) =>
        await session.WaitForStdoutAsync(l => l.StartsWith($"peer 127.0.0.1:{P(port)} ", StringComparison.Ordinal) && !l.EndsWith("client=", StringComparison.Ordinal), Deadline);

    /// <summary>`peerway share` on a free port; returns the process, its magnet link and the port.</summary>
    public async Task<(RunningProcess Share, string Magnet, int Port)> ShareAsync(params string[] args)
    {
        var port = TorrentInterop.FreePort();
        var share = Env.StartPeerway(["share", .. args, "--port", P(port)]);
        var magnet = (await share.FirstLineAsync(Deadline)).Trim();
        Assert.StartsWith("magnet:?xt=urn:btih:", magnet);
        return (share, magnet, port);
    }

    /// <summary>`peerway create <paramref name="content"/>` into the temp directory; returns the .torrent's path.</summary>
    public async Task<string> PeerwayCreateAsync(string content)
    {
        var torrent = Path.Combine(Env.Root, Path.GetFileName(content) + ".torrent");
        var (code, _, err) = await Env.RunPeerwayAsync(Deadline, "create", content, "-o", torrent);
        Assert.True(code == 0, err);
        return torrent;
    }

    /// <summary>`peerway get`; asserts exit 0.</summary>
    public async Task GetAsync(params string[] args)
    {
        var (code, _, err) = await Env.RunPeerwayAsync(Deadline, ["get", .. args, "--timeout", "120"]);
        // The error is the last line of stderr (progress lines come before it): it goes first.
        var error = err.TrimEnd().Split('\n')[^1];
        Assert.True(code == 0, $"peerway get failed: {error}\n{err}\nlibtorrent: {string.Join("\n", _sessions.Select(s => s.Stdout + s.Stderr))}{string.Concat(Notes.Select(n => "\n" + n))}");
    }

    /// <summary>
    /// `peerway share <paramref name="torrent"/> --content <paramref name="content"/>`, and a libtorrent session that
    /// downloads the torrent from it (the peer given); returns once libtorrent has completed and exited.
    /// </summary>
    public async Task<(ExternalProcess Session, int PeerwayPort, string Dir)> LibtorrentDownloadsFromPeerwayAsync(string torrent, string content)
    {
        var (_, _, port) = await ShareAsync(torrent, "--content", content);
        var dl = Path.Combine(Env.Root, "lt");
        var session = await RunAsync(TorrentInterop.FreePort(), "--torrent", torrent, "--save", dl, "--peer", "127.0.0.1:" + P(port), "--exit-when-complete");
        await CompletedAsync(session);
        return (session, port, dl);
    }

    /// <summary>libtorrent seeds <paramref name="torrent"/> from <paramref name="seedDir"/>; `peerway get` fetches it (the peer given). Returns the download directory.</summary>
    public async Task<string> PeerwayDownloadsFromLibtorrentAsync(string torrent, string seedDir)
    {
        var port = TorrentInterop.FreePort();
        await SeedAsync(port, "--torrent", torrent, "--save", seedDir);
        var dl = Path.Combine(Env.Root, "dl");
        await GetAsync(torrent, "-o", dl, "--peer", "127.0.0.1:" + P(port));
        return dl;
    }

    /// <summary>Random files under <paramref name="root"/>; returns relative path → SHA-256.</summary>
    public static async Task<Dictionary<string, byte[]>> MakeFilesAsync(string root, params (string Name, int Size)[] files)
    {
        var result = new Dictionary<string, byte[]>();
        foreach (var (name, size) in files) result[name] = await TorrentInterop.RandomFileAsync(Path.Combine(root, name), size);
        return result;
    }

    /// <summary>album/{a.bin 3,000,001 B, c.bin 1 MiB, sub/b.txt 17 B, sub/zero.dat 0 B}: files that end mid-piece, so a hybrid has padding.</summary>
    public static Task<Dictionary<string, byte[]>> MakeAlbumAsync(string root) =>
        MakeFilesAsync(Path.Combine(root, "album"), ("a.bin", 3_000_001), ("c.bin", 1 << 20), ("sub/b.txt", 17), ("sub/zero.dat", 0));

    public static void AssertSameFiles(Dictionary<string, byte[]> expected, string dir)
    {
        foreach (var (name, sha) in expected)
        {
            Assert.True(sha.AsSpan().SequenceEqual(TorrentInterop.Sha256OfFile(Path.Combine(dir, name)) ?? []), $"{name} in {dir} differs or is missing");
        }
    }

    /// <summary>Waits for the session to report the torrent complete (it exits 0 with --exit-when-complete).</summary>
    public static async Task FinishedAsync(ExternalProcess session) =>
        await session.WaitForStdoutAsync(l => l == "finished", Deadline);

    /// <summary>Waits for a session started with --exit-when-complete to exit, and asserts it completed (exit 0).</summary>
    public static async Task CompletedAsync(ExternalProcess session)
    {
        var code = await session.WaitForExitAsync(Deadline);
        Assert.True(code == 0, $"libtorrent exited {code} (3: its own timeout) without completing.\n--- stdout ---\n{Tail(session.Stdout)}\n--- stderr ---\n{Tail(session.Stderr)}");
    }

    private static string Tail(string s) => s.Length <= 4000 ? s : s[^4000..];

    [GeneratedRegex(@"^dht-peers .*")]
    public static partial Regex DhtPeersLine();

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _sessions) await s.DisposeAsync();
        await Env.DisposeAsync();
    }
}
