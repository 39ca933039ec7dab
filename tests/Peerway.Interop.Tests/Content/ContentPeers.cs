using System.Security.Cryptography;
using System.Text.Json;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Content;

/// <summary>Runs the npm content peers (ipfs-unixfs-importer, @ipld/car, @helia/verified-fetch) in tests/interop-peers.</summary>
internal static class ContentPeers
{
    private static readonly string[] Modules = ["ipfs-unixfs-importer", "ipfs-unixfs-exporter", "@ipld/car", "@helia/verified-fetch", "helia"];

    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(4);

    /// <summary>The peers directory; fails the test when node or a module is missing.</summary>
    public static string Require()
    {
        RequiredTool.Require("node", "Node.js 20");
        var dir = RequiredTool.RequireNpmPeers();
        foreach (var module in Modules)
        {
            if (!Directory.Exists(Path.Combine(dir, "node_modules", module)))
            {
                Assert.Fail($"npm peer {module} is not installed in {dir} (run `npm ci` there, or ./test.sh).");
            }
        }

        return dir;
    }

    /// <summary>Runs <c>node SCRIPT args</c> in the peers directory; asserts exit 0 and returns stdout.</summary>
    public static async Task<string> RunAsync(string script, params string[] args)
    {
        var dir = Require();
        await using var node = ExternalProcess.Start("node", [Path.Combine(dir, script), .. args], Lifetime, dir);
        var code = await node.WaitForExitAsync(Lifetime);
        Assert.True(code == 0, $"node {script} exited {code}\n{node.Stdout}\n{node.Stderr}");
        return node.Stdout.Trim();
    }

    public static async Task<JsonElement> RunJsonAsync(string script, params string[] args)
    {
        var text = await RunAsync(script, args);
        using var doc = JsonDocument.Parse(text.Split('\n')[^1]);
        return doc.RootElement.Clone();
    }

    /// <summary>Runs <c>./peerway args</c>; asserts exit 0 and returns stdout.</summary>
    public static async Task<string> PeerwayAsync(params string[] args)
    {
        var result = await PeerwayCli.RunAsync(args);
        Assert.True(result.ExitCode == 0, $"peerway {string.Join(' ', args)}: {result}");
        return string.Join('\n', result.StdoutLines).Trim();
    }

    /// <summary>Runs <c>./peerway cat CID --repo REPO &gt; OUTPUT</c> (stdout is binary, so through a shell redirect).</summary>
    public static async Task CatToFileAsync(string cid, string repo, string output)
    {
        await using var p = ExternalProcess.Start(
            "bash", ["-c", "exec \"$0\" cat \"$1\" --repo \"$2\" > \"$3\"", PeerwayCli.Launcher, cid, repo, output],
            Lifetime, RepoRoot.Find());
        var code = await p.WaitForExitAsync(Lifetime);
        Assert.True(code == 0, $"peerway cat {cid} exited {code}: {p.Stderr}");
    }

    /// <summary>Writes <paramref name="size"/> pseudo-random bytes (seeded) to a file.</summary>
    public static string WriteRandomFile(string directory, string name, long size, int seed)
    {
        var path = Path.Combine(directory, name);
        var random = new Random(seed);
        var buffer = new byte[1 << 20];
        using var file = File.Create(path);
        for (var left = size; left > 0;)
        {
            var n = (int)Math.Min(left, buffer.Length);
            random.NextBytes(buffer.AsSpan(0, n));
            file.Write(buffer, 0, n);
            left -= n;
        }

        return path;
    }

    public static string Sha256Hex(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
