using Microsoft.Extensions.Logging;
using Peerway.Content;
using Peerway.Content.Blocks;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;
using Peerway.Libp2p;
using Peerway.Libp2p.Kad;
using Peerway.Libp2p.Protocols;
using Peerway.Node.Content;
using Peerway.Net;

namespace Peerway.Node.Ipfs;

/// <summary>What <see cref="IpfsPeer.FetchAsync"/> did: the walk's result, what each peer sent, the peers not reached.</summary>
public sealed record IpfsFetchResult(ContentResult Result, IReadOnlyList<BitswapPeerStats> Peers, IReadOnlyList<string> Unreachable);

/// <summary>Blocks from the connected peers by Bitswap (the client spreads the wants over them).</summary>
internal sealed class BitswapBlockSource(BitswapClient client, IReadOnlyCollection<Libp2pConnection> peers) : IBlockSource
{
    public Task<byte[]?> FetchAsync(Cid cid, CancellationToken cancellationToken) => client.GetAsync(cid, peers, cancellationToken);

    /// <summary>The client hands out a block only when the CID rebuilt from its bytes is the CID wanted.</summary>
    public bool VerifiesBlocks => true;
}

/// <summary>
/// The IPFS peer of a repository: its libp2p identity (an Ed25519 seed in <c>&lt;repo&gt;/libp2p.key</c>, created on first
/// use, like kubo's <c>Identity.PrivKey</c> in its config) and a <see cref="Libp2pHost"/> on real TCP sockets.
/// </summary>
public sealed class IpfsPeer : IAsyncDisposable
{
    /// <summary>The key file's name inside the repository.</summary>
    public const string KeyFileName = "libp2p.key";

    private IpfsPeer(PeerKey key, Libp2pHost host, BitswapServer bitswap, BitswapClient client, ContentRepo repo, KadDht dht)
    {
        Dht = dht;
        Key = key;
        Host = host;
        Bitswap = bitswap;
        Client = client;
        Repo = repo;
    }

    /// <summary>The IPFS Kademlia DHT (server mode), its routing table separate from Mainline's.</summary>
    public KadDht Dht { get; }

    /// <summary>Fetches blocks over Bitswap from connected peers.</summary>
    public BitswapClient Client { get; }

    /// <summary>The repository whose blocks are served and where fetched blocks go.</summary>
    public ContentRepo Repo { get; }

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
    public static IpfsPeer Open(string repoDirectory, ILoggerFactory logs, Libp2pHostOptions? options = null) =>
        Open(new ContentRepo(repoDirectory), logs, options);

    /// <summary>The peer of an open repository (<c>peerway node</c>'s): the same key file, so the same identity as
    /// <c>peerway ipfs serve --repo</c> on that directory.</summary>
    public static IpfsPeer Open(ContentRepo repo, ILoggerFactory logs, Libp2pHostOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(repo);
        ArgumentNullException.ThrowIfNull(logs);
        var key = LoadOrCreateKey(repo.Directory);
        var host = new Libp2pHost(key, new TcpStreamTransport(), options, TimeProvider.System, logs.CreateLogger("libp2p"));
        var bitswap = new BitswapServer(host, cid => repo.Blocks.TryGet(cid, out var block) == ContentError.None ? block : null, null, logs.CreateLogger("bitswap"));
        var client = new BitswapClient(bitswap, null, TimeProvider.System, logs.CreateLogger("bitswap"));
        var dht = new KadDht(host, null, logs.CreateLogger("kad"));
        return new IpfsPeer(key, host, bitswap, client, repo, dht);
    }

    /// <summary>Listens on a <c>/ip4|ip6/…/tcp/…</c> multiaddr.</summary>
    public Task StartAsync(Multiaddr listen, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(listen);
        if (!listen.TryGetTcpEndPoint(out var endPoint)) throw new ArgumentException($"not a TCP listen address: {listen}", nameof(listen));
        return Host.StartAsync(endPoint!, ct);
    }

    /// <summary>
    /// Dials <paramref name="peers"/> (those that cannot be reached are reported in the result, not thrown) and fetches the
    /// DAG under <paramref name="root"/> into the repository by Bitswap from every peer reached at once, each block
    /// verified against its CID (<see cref="DagFetcher"/>).
    /// </summary>
    public Task<IpfsFetchResult> FetchAsync(Cid root, IReadOnlyList<Multiaddr> peers, int parallelism, CancellationToken ct) =>
        FetchAsync(root, peers, parallelism, onBlock: null, ct);

    /// <summary>As <see cref="FetchAsync(Cid, IReadOnlyList{Multiaddr}, int, CancellationToken)"/>, handing every verified block to <paramref name="onBlock"/> as it arrives (<see cref="DagFetcher"/>).</summary>
    public async Task<IpfsFetchResult> FetchAsync(Cid root, IReadOnlyList<Multiaddr> peers, int parallelism, Action<Cid, byte[]>? onBlock, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(peers);
        var dials = peers.Select(async a =>
        {
            try
            {
                return (Address: a, Connection: await Host.DialAsync(a, ct).ConfigureAwait(false), Error: (string?)null);
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or Libp2pProtocolException or TimeoutException)
            {
                return (Address: a, Connection: (Libp2pConnection?)null, Error: ex.Message);
            }
        }).ToList();
        var dialled = await Task.WhenAll(dials).ConfigureAwait(false);
        var connections = dialled.Where(d => d.Connection is not null).Select(d => d.Connection!).ToList();
        var unreachable = dialled.Where(d => d.Connection is null).Select(d => $"{d.Address}: {d.Error}").ToList();
        if (connections.Count == 0) return new IpfsFetchResult(ContentResult.Fail(ContentError.NotFound, root), [], unreachable);
        var result = await DagFetcher.FetchDagAsync(new BitswapBlockSource(Client, connections), Repo.Blocks, root, parallelism, onBlock, ct).ConfigureAwait(false);
        return new IpfsFetchResult(result, Client.PeerStats, unreachable);
    }

    /// <summary>Providers of <paramref name="cid"/> found in the IPFS DHT, as dialable addresses (<c>…/p2p/&lt;id&gt;</c>).</summary>
    public async Task<IReadOnlyList<Multiaddr>> FindProviderAddressesAsync(Cid cid, int max, CancellationToken ct)
    {
        var providers = await Dht.FindProvidersAsync(cid, max, ct).ConfigureAwait(false);
        return [.. providers.Where(p => !p.Peer.Equals(Host.PeerId)).SelectMany(p => p.Addresses.Where(a => a.TryGetTcpEndPoint(out _)).Take(1).Select(a => a.PeerId is null ? a.WithPeer(p.Peer) : a))];
    }

    /// <summary>kubo's default swarm address, on loopback.</summary>
    public static string DefaultListen => "/ip4/127.0.0.1/tcp/4001";

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync().ConfigureAwait(false);
        await Dht.DisposeAsync().ConfigureAwait(false);
        await Host.DisposeAsync().ConfigureAwait(false);
        Key.Dispose();
    }
}
