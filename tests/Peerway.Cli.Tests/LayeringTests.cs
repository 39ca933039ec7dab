using System.Xml.Linq;

namespace Peerway.Cli.Tests;

/// <summary>
/// The layering of docs/ARCHITECTURE.md, checked on every <c>src/*/*.csproj</c>:
/// Core ← Net ← Dht/Nat ← WebRtc/Torrent/Content ← WebTorrent/Simulation ← Node ← Cli. A project reference or a package that is not
/// in the tables below fails; a table row that points upwards fails too, so the tables cannot drift from the layers.
/// </summary>
public sealed class LayeringTests
{
    /// <summary>The layer of each project: a project may reference only projects of a lower layer.</summary>
    private static readonly Dictionary<string, int> Layers = new(StringComparer.Ordinal)
    {
        ["Peerway.Core"] = 0,
        ["Peerway.Net"] = 1,
        ["Peerway.Dht"] = 2,
        ["Peerway.Nat"] = 2,
        ["Peerway.Libp2p"] = 2,
        ["Peerway.WebRtc"] = 3,
        ["Peerway.Torrent"] = 3,
        ["Peerway.Content"] = 3,
        ["Peerway.WebTorrent"] = 4,
        ["Peerway.Simulation"] = 4,
        ["Peerway.Node"] = 5,
        ["Peerway.Cli"] = 6,
    };

    /// <summary>Every allowed project reference, with why it exists. A new edge needs a row here.</summary>
    private static readonly (string From, string To, string Reason)[] AllowedReferences =
    [
        ("Peerway.Net", "Peerway.Core", "sockets and the virtual network carry Core's value types"),
        ("Peerway.Dht", "Peerway.Core", "NodeId and bencode (KRPC is bencoded, BEP 5)"),
        ("Peerway.Dht", "Peerway.Net", "DhtNode runs on an IDatagramSocket"),
        ("Peerway.Nat", "Peerway.Core", "shared value types"),
        ("Peerway.Nat", "Peerway.Net", "STUN/TURN/ICE run on IDatagramSocket; the per-IP rate limiter"),
        ("Peerway.Libp2p", "Peerway.Core", "multihashes, CIDs and varints of peer ids, multiaddrs and Bitswap"),
        ("Peerway.Libp2p", "Peerway.Net", "libp2p connections run over the stream seam (TCP today)"),
        ("Peerway.WebRtc", "Peerway.Nat", "DTLS/SCTP ride the ICE agent's selected pair (and Net/Core through it)"),
        ("Peerway.Torrent", "Peerway.Core", "bencode for metainfo and the wire's extension messages"),
        ("Peerway.Torrent", "Peerway.Net", "the stream seam and UDP trackers over IDatagramSocket"),
        ("Peerway.Torrent", "Peerway.Dht", "DhtPeerSource finds peers through a DhtNode"),
        ("Peerway.Content", "Peerway.Core", "CIDs and multiformats; nothing else (no sockets, no DHT: Node wires discovery)"),
        ("Peerway.WebTorrent", "Peerway.Torrent", "WebRTC peers join torrent sessions through the WebSocket tracker client's IWebRtcPeerSource"),
        ("Peerway.WebTorrent", "Peerway.WebRtc", "the peers are RTCPeerConnections with one data channel each"),
        ("Peerway.Simulation", "Peerway.Core", "node ids"),
        ("Peerway.Simulation", "Peerway.Net", "the simulated network implements IDatagramSocket"),
        ("Peerway.Simulation", "Peerway.Dht", "it runs the production DhtNode"),
        ("Peerway.Node", "Peerway.Core", "composition root"),
        ("Peerway.Node", "Peerway.Net", "composition root: real sockets"),
        ("Peerway.Node", "Peerway.Dht", "composition root: DhtHost"),
        ("Peerway.Node", "Peerway.Torrent", "composition root: TorrentHost, the tracker server host"),
        ("Peerway.Node", "Peerway.Content", "composition root: blockstore on disk, gateway, discovery"),
        ("Peerway.Node", "Peerway.Nat", "composition root: STUN/TURN server hosts"),
        ("Peerway.Node", "Peerway.Libp2p", "composition root: the IPFS peer (libp2p host, its key in the repository)"),
        ("Peerway.Node", "Peerway.WebRtc", "composition root: certificate state, rtc hosts"),
        ("Peerway.Node", "Peerway.WebTorrent", "composition root: WebRTC peers for torrents with WebSocket trackers"),
        ("Peerway.Cli", "Peerway.Node", "every command goes through Node"),
        ("Peerway.Cli", "Peerway.Simulation", "`peerway simulate` is the simulator's front end"),
    ];

    /// <summary>Every allowed package (or shared framework), with the projects that may reference it and why.</summary>
    private static readonly (string Package, string[] Projects, string Reason)[] AllowedPackages =
    [
        ("Microsoft.Extensions.Logging.Abstractions", ["Peerway.Dht", "Peerway.Nat", "Peerway.WebRtc", "Peerway.Torrent", "Peerway.WebTorrent", "Peerway.Simulation", "Peerway.Libp2p"],
            "engines log through ILogger (the abstractions only; Node picks the providers)"),
        ("NSec.Cryptography", ["Peerway.Dht", "Peerway.Libp2p"], "ed25519 (BEP 44 mutable items, libp2p peer keys) and X25519 (Noise), libsodium underneath"),
        ("System.IO.Hashing", ["Peerway.Nat"], "CRC-32 of the STUN FINGERPRINT attribute (RFC 8489 §14.7)"),
        ("BouncyCastle.Cryptography", ["Peerway.WebRtc"], "DTLS 1.2 for data channels (.NET has no DTLS)"),
        ("ScottPlot", ["Peerway.Simulation"], "PNG plots of simulation sweeps: heavy (SkiaSharp), so in Simulation alone"),
        ("OpenTelemetry", ["Peerway.Node"], "the metrics SDK that reads the engines' System.Diagnostics.Metrics meters: only the composition root exports"),
        ("OpenTelemetry.Exporter.Prometheus.AspNetCore", ["Peerway.Node"], "/metrics in Prometheus text format on the node's rpc listener"),
        ("Microsoft.AspNetCore.App", ["Peerway.Node"], "Kestrel for the gateway and signalling: only the composition root hosts HTTP"),
        ("System.CommandLine", ["Peerway.Cli"], "command-line parsing"),
        ("Spectre.Console", ["Peerway.Cli"], "progress display and tables"),
    ];

    [Fact]
    public void Every_project_reference_is_an_allowed_edge()
    {
        var violations = new List<string>();
        foreach (var (project, document) in SourceProjects())
        {
            foreach (var reference in Includes(document, "ProjectReference").Select(Path.GetFileNameWithoutExtension))
            {
                if (!AllowedReferences.Any(e => e.From == project && e.To == reference))
                    violations.Add($"{project} -> {reference} is not an allowed reference (docs/ARCHITECTURE.md, LayeringTests.AllowedReferences)");
            }
        }

        Assert.Empty(violations);
    }

    [Fact]
    public void Allowed_edges_point_to_a_lower_layer()
    {
        var upward = AllowedReferences
            .Where(e => !Layers.ContainsKey(e.From) || !Layers.ContainsKey(e.To) || Layers[e.To] >= Layers[e.From])
            .Select(e => $"{e.From} -> {e.To}")
            .ToList();

        Assert.Empty(upward);
        Assert.All(AllowedReferences, e => Assert.False(string.IsNullOrWhiteSpace(e.Reason)));
    }

    [Fact]
    public void Every_source_project_has_a_layer()
    {
        var projects = SourceProjects().Select(p => p.Project).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Layers.Keys.Order(StringComparer.Ordinal), projects);
    }

    [Fact]
    public void Every_package_is_allowed_in_that_project()
    {
        var violations = new List<string>();
        foreach (var (project, document) in SourceProjects())
        {
            foreach (var package in Includes(document, "PackageReference").Concat(Includes(document, "FrameworkReference")))
            {
                var row = AllowedPackages.FirstOrDefault(p => p.Package == package);
                if (row.Projects is null || !row.Projects.Contains(project, StringComparer.Ordinal))
                    violations.Add($"{project} references {package}, which is not allowed there (LayeringTests.AllowedPackages)");
            }
        }

        Assert.Empty(violations);
    }

    [Fact]
    public void A_forbidden_edge_or_package_is_reported()
    {
        // The checks above on a made-up project file, so that a broken parser cannot pass them by finding nothing.
        var document = XDocument.Parse("""
            <Project Sdk="Microsoft.NET.Sdk">
              <ItemGroup>
                <ProjectReference Include="../Peerway.Node/Peerway.Node.csproj" />
                <FrameworkReference Include="Microsoft.AspNetCore.App" />
              </ItemGroup>
            </Project>
            """);

        Assert.Equal(["Peerway.Node"], Includes(document, "ProjectReference").Select(Path.GetFileNameWithoutExtension));
        Assert.DoesNotContain(AllowedReferences, e => e.From == "Peerway.Dht" && e.To == "Peerway.Node");
        Assert.Equal(["Microsoft.AspNetCore.App"], Includes(document, "FrameworkReference"));
        Assert.DoesNotContain("Peerway.Dht", AllowedPackages.Single(p => p.Package == "Microsoft.AspNetCore.App").Projects);
    }

    private static IEnumerable<(string Project, XDocument Document)> SourceProjects()
    {
        var src = Path.Combine(RepositoryRoot(), "src");
        var files = Directory.GetDirectories(src)
            .Select(dir => Path.Combine(dir, Path.GetFileName(dir) + ".csproj"))
            .Where(File.Exists)
            .ToList();
        Assert.NotEmpty(files);
        return files.Select(f => (Path.GetFileNameWithoutExtension(f), XDocument.Load(f)));
    }

    private static IEnumerable<string> Includes(XDocument document, string item) =>
        document.Descendants(item).Select(e => (string?)e.Attribute("Include")).OfType<string>()
            .Select(i => i.Replace('\\', '/'));

    internal static string RepositoryRoot()
    {
        if (Environment.GetEnvironmentVariable("PEERWAY_ROOT") is { Length: > 0 } env) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Peerway.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("Peerway.sln not found above the test binaries; set PEERWAY_ROOT");
    }
}
