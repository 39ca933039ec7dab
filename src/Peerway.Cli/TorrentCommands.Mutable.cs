using System.CommandLine;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Node;

namespace Peerway.Cli;

/// <summary>BEP 46 (mutable torrents) in share and get: <c>share --publish KEYFILE</c> and <c>get magnet:?xs=urn:btpk:…</c>.</summary>
internal static partial class TorrentCommands
{
    /// <summary>BEP 44 items expire unless put again (libtorrent and Peerway keep them 2 hours): republish well within that.</summary>
    private const int DefaultRepublishSeconds = 1800;

    private const int DefaultFollowSeconds = 60;

    private static Option<string?> PublishOption() => new("--publish")
    {
        Description = "BEP 46: publish the torrent's info-hash in the DHT as a mutable item signed with this key file ('dht keygen'), seq one above the highest found; needs --dht-bootstrap.",
    };

    private static Option<string?> PublishSaltOption() => new("--salt") { Description = $"With --publish: the item's salt (UTF-8, at most {Bep44.MaxSaltLength} bytes)." };

    private static Option<int> RepublishOption() => new("--republish")
    {
        Description = "With --publish: put the item again every SECONDS (BEP 44 items expire).",
        DefaultValueFactory = _ => DefaultRepublishSeconds,
    };

    private static Option<bool> FollowOption() => new("--follow")
    {
        Description = "With a BEP 46 magnet (xs=urn:btpk:): after the download, keep seeding, checking the item and fetching each newer torrent into the same directory, until Ctrl-C (the default with --seed).",
    };

    private static Option<bool> NoFollowOption() => new("--no-follow")
    {
        Description = "With a BEP 46 magnet and --seed: seed the torrent resolved first, without following the item's updates.",
    };

    /// <summary>
    /// BEP 46: "Periodically polling such ID [...] allows consumers to be notified about updates". Whether get follows the
    /// item: when the process stays up anyway (--seed) unless --no-follow, or when --follow asks for it; a plain get
    /// exits when done. The follow options need a BEP 46 magnet; --follow and --no-follow together are a usage error.
    /// </summary>
    internal static bool CheckFollow(bool mutableMagnet, bool follow, bool noFollow, bool interval, bool seed)
    {
        if (!mutableMagnet && (follow || noFollow || interval)) throw new UsageException("--follow, --no-follow and --follow-interval need a BEP 46 magnet (xs=urn:btpk:)");
        if (follow && noFollow) throw new UsageException("--follow and --no-follow contradict each other");
        if (noFollow && interval) throw new UsageException("--follow-interval and --no-follow contradict each other");
        return mutableMagnet && (follow || (seed && !noFollow));
    }

    private static Option<int> FollowIntervalOption() => new("--follow-interval")
    {
        Description = "With --follow: seconds between checks of the item.",
        DefaultValueFactory = _ => DefaultFollowSeconds,
    };

    private static TimeSpan CheckSeconds(int seconds, string option) =>
        seconds is >= 1 and <= 86_400 ? TimeSpan.FromSeconds(seconds) : throw new UsageException($"{option} must be between 1 and 86400 seconds");

    /// <summary>The parsed BEP 46 magnet, or null when <paramref name="target"/> is not one (a usage error when malformed).</summary>
    private static MutableTorrentLink? CheckMutableMagnet(string target, bool dht, bool proxy)
    {
        if (!MutableTorrentLink.IsMutableTorrentMagnet(target)) return null;
        if (!MutableTorrentLink.TryParse(target, out var link, out var error)) throw new UsageException($"invalid BEP 46 magnet link: {error}");
        if (!dht) throw new UsageException("a BEP 46 magnet (xs=urn:btpk:) is resolved through the DHT: give --dht-bootstrap HOST:PORT");
        if (proxy) throw new UsageException("a BEP 46 magnet is not resolved through --proxy");
        return link;
    }

    /// <summary>A DHT node of the command's own (bound to <paramref name="address"/>, any port), joined: it resolves or
    /// publishes the BEP 46 item and is the torrent's DHT peer source. No node answering is a runtime failure.
    /// BEP 32: with <paramref name="pair"/>, an address of the other family, a node there too (same id), each joining
    /// through the routers of its family (see <see cref="CheckDhtPair"/>).</summary>
    private static async Task<DualStackDhtHost> StartJoinedDhtAsync(IPAddress address, IPAddress? pair, IReadOnlyList<IPEndPoint> routers, ILoggerFactory loggers, CancellationToken ct)
    {
        var host = Listening.Bind(address, 0, () => DualStackDhtHost.Start(new DhtHostOptions { Bind = new IPEndPoint(address, 0) }, pair, loggers));
        try
        {
            if (await host.JoinAsync(routers, ct) == 0) throw new RuntimeFailureException($"no DHT bootstrap node answered ({string.Join(", ", routers)})");
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <summary>BEP 46: the item's current torrent, or a runtime failure naming the target.</summary>
    private static async Task<MutableTorrentUpdate> ResolveOrFailAsync(DhtNode node, MutableTorrentLink link, CancellationToken ct) =>
        await node.ResolveMutableTorrentAsync(link, ct)
        ?? throw new RuntimeFailureException($"no BEP 46 item that verifies and points at a torrent found for {link.Target} ({link})");

    /// <summary>Waits for the item's sequence number to rise above <paramref name="after"/>; null on Ctrl-C.</summary>
    private static async Task<MutableTorrentUpdate?> WaitForUpdateAsync(DhtNode node, MutableTorrentLink link, long after, TimeSpan interval, CancellationToken ct)
    {
        try
        {
            await foreach (var update in node.FollowMutableTorrentAsync(link, interval, ct))
            {
                if (update.Sequence > after) return update;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Interrupted: the caller stops and exits 0.
        }

        return null;
    }

    /// <summary>
    /// BEP 46 publish: puts <c>{ih}</c> signed with the key (seq one above the highest found), prints the BEP 46 magnet on
    /// <paramref name="output"/> and the seq on <paramref name="error"/>; then puts the same item again every
    /// <paramref name="republish"/> until Ctrl-C. No node storing the first put is a runtime failure.
    /// </summary>
    private static async Task PublishUntilInterruptedAsync(DhtNode node, DhtSigningKey key, byte[] salt, NodeId infoHash, TimeSpan republish,
        TextWriter output, TextWriter error, CancellationToken ct)
    {
        var link = new MutableTorrentLink(key.PublicKey, salt);
        var put = await node.PublishMutableTorrentAsync(key, salt, infoHash, ct);
        if (put.StoredOn == 0)
        {
            throw new RuntimeFailureException($"no DHT node stored the BEP 46 item {put.Item.Target}{(put.Errors.Count > 0 ? $" (errors {string.Join(", ", put.Errors)})" : "")}");
        }

        await output.WriteLineAsync(link.ToString());
        await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"published info-hash {infoHash} seq {put.Item.Sequence} on {put.StoredOn} nodes"));
        try
        {
            while (true)
            {
                await Task.Delay(republish, ct);
                var again = await node.PutItemDualStackAsync(put.Item, ct);
                await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"republished seq {put.Item.Sequence} on {again.StoredOn} nodes"));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Interrupted: the caller disposes what it started and exits 0.
        }
    }
}
