using System.Net;
using FsCheck.Xunit;
using Peerway.Core;

namespace Peerway.Dht.Tests;

/// <summary>A lookup candidate made from compact node info keeps the address as bytes and makes its endpoint on demand;
/// the endpoint, and the "is it our own endpoint" test done on the bytes, must match reading the compact info.</summary>
public sealed class CandidateTests
{
    [Property(MaxTest = 1000)]
    public void A_compact_candidate_has_the_endpoint_the_codec_reads_and_compares_like_it(byte[] bytes, bool v6, bool sameAsLocal, ushort port)
    {
        var compact = new byte[v6 ? 18 : 6];
        bytes.AsSpan(0, Math.Min(bytes.Length, compact.Length)).CopyTo(compact);
        Assert.True(KrpcCodec.TryReadCompactEndPoint(compact, out var expected));
        var candidate = new Candidate(NodeId.Max, compact, depth: 2, path: 1);
        Assert.Equal(expected, candidate.EndPoint);
        Assert.Same(candidate.EndPoint, candidate.EndPoint);
        Assert.Equal(expected!.AddressFamily, candidate.EndPoint.AddressFamily);

        var locals = new List<IPEndPoint>
        {
            sameAsLocal ? new IPEndPoint(expected.Address, expected.Port) : new IPEndPoint(expected.Address, port),
            new(IPAddress.Parse("10.1.2.3"), expected.Port),
            new(IPAddress.IPv6Loopback, expected.Port),
        };
        if (v6) locals.Add(new IPEndPoint(new IPAddress(expected.Address.GetAddressBytes(), scopeid: 3), expected.Port));
        else locals.Add(new IPEndPoint(expected.Address.MapToIPv6(), expected.Port));
        foreach (var local in locals) Assert.Equal(expected.Equals(local), Lookup.IsEndPoint(compact, local));
    }
}
