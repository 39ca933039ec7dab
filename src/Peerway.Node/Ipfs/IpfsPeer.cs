using Microsoft.Extensions.Logging;
using Peerway.Content;
using Peerway.Libp2p;
using Peerway.Libp2p.Protocols;
using Peerway.Node.Content;
using Peerway.Net;

namespace Peerway.Node.Ipfs;

/// <summary>
/// The IPFS peer of a repository: its libp2p identity (an Ed25519 seed in <c>&lt;repo&gt;/libp2p.key</c>, created on first
/// use, like kubo's <c>Identity.PrivKey</c> in its config) and a <see cref="Libp2pHost"/> on real TCP sockets.
/// </summary>
public sealed class IpfsPeer : IAsyncDisposable
{
    /// <summary>The key file's name inside the repository.</summary>
    public const string KeyFileName = "libp2p.key";

    private IpfsPeer(PeerKey key, Libp2pHost host, BitswapServer bitswap)
    {
        Key = key;
        Host = host;
        Bitswap = bitswap;
    }

    /// <summary>Serves the repository's blocks over Bitswap.</summary>
    public BitswapServer Bitswap { get; }

    /// <summary>The peer's identity.</summary>
    public PeerKey Key { get; }

    /// <summary>The libp2p host.</summary>
    public Libp2pHost Host { get; }

    /// <summary>The repository's identity (created and saved when there is none).</summary>
    public static PeerKey LoadOrCreateKey(string repoDirectory)
    {
        Directory.CreateDirectory(repoDirectory);
        var path = Path.Combine(repoDirectory, KeyFileName);
        if (File.Exists(path))
        {
            var text = File.ReadAllText(path).Trim();
            byte[] seed;
            try
            {
                seed = Convert.FromHexString(text);
            }
            catch (FormatException)
            {
                throw new InvalidDataException($"'{path}' is not a 64-digit hex Ed25519 seed");
            }

            return seed.Length == 32 ? PeerKey.FromSeed(seed) : throw new InvalidDataException($"'{path}' is not a 64-digit hex Ed25519 seed");
        }

        var key = PeerKey.Generate();
        var temp = path + ".tmp";
        File.WriteAllText(temp, Convert.ToHexStringLower(key.ExportSeed()) + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: false);
        return key;
    }

    /// <summary>
    /// A peer with the repository's identity that serves the repository's blocks over Bitswap (each verified against
    /// its CID when read); <see cref="StartAsync"/> listens.
    /// </summary>
    public static IpfsPeer Open(string repoDirectory, ILoggerFactory logs, Libp2pHostOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(logs);
        var repo = new ContentRepo(repoDirectory);
        var key = LoadOrCreateKey(repoDirectory);
        var host = new Libp2pHost(key, new TcpStreamTransport(), options, TimeProvider.System, logs.CreateLogger("libp2p"));
        var bitswap = new BitswapServer(host, cid => repo.Blocks.TryGet(cid, out var block) == ContentError.None ? block : null, null, logs.CreateLogger("bitswap"));
        return new IpfsPeer(key, host, bitswap);
    }

    /// <summary>Listens on a <c>/ip4|ip6/…/tcp/…</c> multiaddr.</summary>
    public Task StartAsync(Multiaddr listen, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(listen);
        if (!listen.TryGetTcpEndPoint(out var endPoint)) throw new ArgumentException($"not a TCP listen address: {listen}", nameof(listen));
        return Host.StartAsync(endPoint!, ct);
    }

    /// <summary>kubo's default swarm address, on loopback.</summary>
    public static string DefaultListen => "/ip4/127.0.0.1/tcp/4001";

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync().ConfigureAwait(false);
        Key.Dispose();
    }
}
