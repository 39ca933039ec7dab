using System.Net;
using System.Text;
using Peerway.Dht.Log;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Dht.Tests.Log;

/// <summary>
/// The replicated log over a virtual network (issue 17, item 6): the owner publishes heads in the DHT and serves its
/// entries, a follower finds the head and the holders and converges with inclusion and consistency proofs, and a holder
/// serving a tampered entry is detected by index and dropped.
/// </summary>
public sealed class LogReplicaTests : IAsyncDisposable, IDisposable
{
    private static readonly LogReplicaOptions Options = new() { PollInterval = TimeSpan.FromSeconds(5), RequestTimeout = TimeSpan.FromSeconds(5) };
    private readonly TempDirectory _temp = new("pw-log-replica");
    private readonly DhtTestNetwork _net = new();
    private readonly VirtualStreamNetwork _streams;
    private readonly List<LogReplica> _replicas = [];
    private readonly List<DhtNode> _dhts = [];
    private readonly Dictionary<IPAddress, VirtualStreamEndpoint> _endpoints = [];

    public LogReplicaTests()
    {
        _streams = new VirtualStreamNetwork(_net.Scheduler, _net.Time);
        // A small DHT to store heads and holders in.
        var nodes = Enumerable.Range(0, 12).Select(_ => _net.AddNode()).ToList();
        foreach (var n in nodes.Skip(1)) Run(() => n.BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var r in _replicas) Run(() => DisposeAsync(r));
        await _net.DisposeAsync();
        _temp.Dispose();
    }

    public void Dispose() => _temp.Dispose();

    /// <summary>A DHT node and a stream endpoint on one virtual host, and a replica of <paramref name="log"/> listening on
    /// the DHT's port number.</summary>
    private LogReplica Host(LogDirectory log, DhtNode? dht = null)
    {
        if (dht is null)
        {
            dht = _net.AddNode(new DhtOptions { RandomSeed = 100 + _dhts.Count });
            Run(() => dht.BootstrapAsync([_net.Nodes[0].LocalEndPoint], CancellationToken.None));
            _dhts.Add(dht);
        }

        var transport = _streams.AddEndpoint(address: dht.LocalEndPoint.Address);
        _endpoints[dht.LocalEndPoint.Address] = transport;
        return Listen(log, dht, transport);
    }

    private LogReplica Listen(LogDirectory log, DhtNode dht, IStreamTransport transport)
    {
        var replica = new LogReplica(log, dht, transport, _net.Time, Options);
        _replicas.Add(replica);
        Run(() => replica.ListenAsync(new IPEndPoint(dht.LocalEndPoint.Address, dht.LocalEndPoint.Port), CancellationToken.None));
        return replica;
    }

    private LogDirectory Owner(int entries, out DhtSigningKey key)
    {
        key = DhtSigningKey.Generate();
        var log = LogDirectory.Create(_temp.Combine("owner"), "journal", key);
        for (var i = 0; i < entries; i++) log.Append(Encoding.UTF8.GetBytes($"entry {i}"));
        return log;
    }

    private LogDirectory Replica(string dir, LogDirectory of) => LogDirectory.CreateReplica(_temp.Combine(dir), of.Name, of.PublicKey);

    private static async Task<int> DisposeAsync(LogReplica replica)
    {
        await replica.DisposeAsync();
        return 0;
    }

    private LogSyncResult Sync(LogReplica replica) => Run(() => replica.SyncAsync(null, CancellationToken.None));

    /// <summary>Starts <paramref name="start"/> outside the test runner's SynchronizationContext (under it, completions
    /// would hop to the thread pool and race the scheduler) and runs the virtual network until it ends.</summary>
    private T Run<T>(Func<Task<T>> start)
    {
        var task = _net.Scheduler.RunAsync(start, TimeSpan.FromMinutes(5));
#pragma warning disable VSTHRD002 // RunAsync returned a completed task: this only unwraps its result
        return task.GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
    }

    [Fact]
    public void A_follower_finds_the_head_and_the_owner_in_the_DHT_and_converges_as_the_owner_appends()
    {
        var log = Owner(5, out var key);
        using (key)
        {
            var owner = Host(log);
            Assert.True(Run(() => owner.PublishAsync(CancellationToken.None)) > 0);
            var copy = Replica("follower", log);
            var follower = Host(copy);

            var first = Sync(follower);
            Assert.Equal(LogSyncStatus.Synced, first.Status);
            Assert.Equal(5, copy.Length);
            Assert.True(copy.Verify().Ok, copy.Verify().Problem);
            Assert.Equal(log.Root(5), copy.Root(5));
            Assert.Equal("entry 4", Encoding.UTF8.GetString(copy.ReadEntry(4)));
            Assert.Equal(LogSyncStatus.UpToDate, Sync(follower).Status);

            // The owner appends: the follower takes only the new entries, after the consistency proof from 5 to 8.
            for (var i = 5; i < 8; i++) log.Append(Encoding.UTF8.GetBytes($"entry {i}"));
            Run(() => owner.PublishAsync(CancellationToken.None));
            Assert.Equal(LogSyncStatus.Synced, Sync(follower).Status);
            Assert.Equal(8, copy.Length);
            var verification = LogDirectory.Open(copy.DirectoryPath).Verify();
            Assert.True(verification.Ok, verification.Problem);
            Assert.Equal(log.Root(8), verification.Head!.Root);
            Assert.Empty(follower.DroppedPeers);
        }
    }

    [Fact]
    public void A_holder_serving_a_tampered_entry_is_dropped_with_its_index_and_the_follower_gets_it_elsewhere()
    {
        var log = Owner(6, out var key);
        using (key)
        {
            var owner = Host(log);
            Run(() => owner.PublishAsync(CancellationToken.None));

            // A second holder clones honestly, announces itself, then its copy of entry 3 is changed on disk.
            var badCopy = Replica("tamperer", log);
            var tamperer = Host(badCopy);
            Assert.Equal(LogSyncStatus.Synced, Sync(tamperer).Status);
            Run(() => tamperer.PublishAsync(CancellationToken.None));
            File.WriteAllText(Path.Combine(badCopy.DirectoryPath, "entries", "0000000003"), "entry 3, edited");

            // The owner goes offline: the tamperer is the only holder that answers.
            var ownerDht = _dhts[0];
            Run(() => DisposeAsync(owner));
            var copy = Replica("follower", log);
            var follower = Host(copy);
            var result = Sync(follower);
            Assert.Equal(LogSyncStatus.NoPeer, result.Status);
            Assert.Equal(0, copy.Length);
            var dropped = Assert.Single(follower.DroppedPeers);
            Assert.Equal(tamperer.LocalEndPoint, dropped.Key);
            Assert.Equal("entry 3 does not match the signed head", dropped.Value);

            // The owner is back: the dropped holder is not asked again, the owner serves, the copy verifies.
            Listen(log, ownerDht, _endpoints[ownerDht.LocalEndPoint.Address]);
            var again = Sync(follower);
            Assert.Equal(LogSyncStatus.Synced, again.Status);
            Assert.Equal(6, copy.Length);
            Assert.True(copy.Verify().Ok, copy.Verify().Problem);
            Assert.Single(follower.DroppedPeers);
        }
    }

    [Fact]
    public void A_head_in_the_DHT_that_forks_the_history_held_is_kept_as_a_fork_proof()
    {
        using var key = DhtSigningKey.Generate();
        var a = LogDirectory.Create(_temp.Combine("a"), "journal", key);
        var b = LogDirectory.Create(_temp.Combine("b"), "journal", key);
        for (var i = 0; i < 3; i++)
        {
            a.Append(Encoding.UTF8.GetBytes($"a {i}"));
            b.Append(Encoding.UTF8.GetBytes($"b {i}"));
        }

        // The follower holds history A; the owner puts history B's head of the same length into the DHT.
        var copy = Replica("follower", a);
        copy.AppendVerified([.. Enumerable.Range(0, 3).Select(i => a.ReadEntry(i))], a.LatestHead()!);
        var follower = Host(copy);
        var owner = Host(b);
        Assert.True(Run(() => owner.PublishAsync(CancellationToken.None)) > 0);

        var result = Sync(follower);
        Assert.Equal(LogSyncStatus.Fork, result.Status);
        Assert.True(result.Fork!.IsValid());
        var verification = LogDirectory.Open(copy.DirectoryPath).Verify();
        Assert.False(verification.Ok);
        Assert.NotNull(verification.Fork);
        Assert.Equal(3, copy.Length);
    }
}
