using System.Net;
using System.Runtime.CompilerServices;
using FsCheck.Xunit;
using Peerway.Core;

namespace Peerway.Dht.Tests;

public sealed class RoutingEntryTests
{
    private static readonly IPEndPoint Ep = new(IPAddress.Loopback, 6881);

    /// <summary>The entry keeps an id as its three words (<see cref="IdWords"/> must lay out like <see cref="NodeId"/>).</summary>
    [Property(MaxTest = 500)]
    public void An_entry_gives_back_the_id_it_was_made_with(byte[] bytes, bool verified)
    {
        var raw = new byte[NodeId.Length];
        bytes.AsSpan(0, Math.Min(bytes.Length, raw.Length)).CopyTo(raw);
        var id = new NodeId(raw);
        var entry = new RoutingEntry(id, Ep, verified);
        Assert.Equal(id, entry.Id);
        Assert.Equal(id.ToString(), entry.Id.ToString());
        Assert.Equal(verified, entry.Verified);
        Assert.Same(Ep, entry.EndPoint);
    }

    [Fact]
    public void The_id_words_have_the_size_of_a_node_id_and_an_entry_is_56_bytes()
    {
        Assert.Equal(Unsafe.SizeOf<NodeId>(), Unsafe.SizeOf<IdWords>());
        Assert.Equal(56, Unsafe.SizeOf<RoutingEntry>());
    }

    [Fact]
    public void Failures_saturate_and_a_new_entry_has_responded_to_nothing()
    {
        var entry = new RoutingEntry(NodeId.Max, Ep, verified: false);
        Assert.False(entry.HasResponded);
        Assert.Null(entry.LastResponse);
        Assert.Null(entry.LastQuery);
        entry.Failures = 1000;
        Assert.Equal(255, entry.Failures);
        Assert.Equal(NodeState.Bad, entry.State(DateTimeOffset.UnixEpoch, TimeSpan.FromMinutes(15)));
        entry.Failures = 0;
        Assert.Equal(NodeState.Questionable, entry.State(DateTimeOffset.UnixEpoch, TimeSpan.FromMinutes(15)));
    }
}
