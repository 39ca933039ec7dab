using Microsoft.Extensions.Logging;

namespace Peerway.Dht;

// Periodic upkeep: BEP 5 bucket refresh, peer expiry, rate-limit table pruning.
public sealed partial class DhtNode
{
    /// <summary>Lookups a single maintenance tick may start (the rest wait for the next tick).</summary>
    internal const int MaxRefreshesPerTick = 8;

    private TimeSpan MaintenancePeriod => TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, _options.BucketRefreshInterval.Ticks));

    private void OnMaintenance()
    {
        lock (_gate)
        {
            if (_disposed) return;
            var now = _time.GetUtcNow();
            _store.Expire(now);
            _items.Expire(now);
            _limiter.PruneIdle(now);
            if (_table.Count > 0)
            {
                // BEP 5: "Buckets that have not been changed in 15 minutes should be refreshed" by a find_node for a random
                // id in the bucket's range.
                foreach (var target in _table.IdleBucketTargets(now, _options.BucketRefreshInterval, _random).Take(MaxRefreshesPerTick))
                {
                    _log.LogDebug("Refreshing bucket with a lookup for {Target}", target);
                    StartLookup(target, LookupKind.FindNode, []);
                }
            }
        }

        RunDeferred();
    }
}
