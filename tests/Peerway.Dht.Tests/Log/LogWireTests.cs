using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Peerway.Core;
using Peerway.Dht.Log;

namespace Peerway.Dht.Tests.Log;

/// <summary>The log protocol's codec: round trips, bounds, and fuzzing (a peer's bytes never throw).</summary>
public sealed class LogWireTests
{
    private static readonly NodeId Target = NodeId.Random(new Random(3));

    [Fact]
    public void Requests_and_replies_round_trip()
    {
        foreach (var kind in new[] { LogRequestKind.Head, LogRequestKind.Entry, LogRequestKind.Consistency })
        {
            var request = new LogRequest(kind, Target, 5, 9);
            Assert.Equal(request, LogWire.DecodeRequest(LogWire.EncodeRequest(request)));
        }

        var proof = new[] { new byte[32], Enumerable.Repeat((byte)7, 32).ToArray() };
        var reply = LogWire.DecodeReply(LogWire.EncodeReply(new LogReply(null, null, null, "entry"u8.ToArray(), proof, null)))!;
        Assert.Equal("entry"u8.ToArray(), reply.Entry);
        Assert.Equal(proof, reply.Proof);
        var head = LogWire.DecodeReply(LogWire.EncodeReply(new LogReply(3, new byte[32], new byte[64], null, null, null)))!;
        Assert.Equal(3, head.Length);
        Assert.Equal("no head", LogWire.DecodeReply(LogWire.EncodeReply(new LogReply(null, null, null, null, null, "no head")))!.Error);
    }

    [Fact]
    public void Malformed_messages_are_refused_not_thrown()
    {
        Assert.Null(LogWire.DecodeRequest("d1:q4:head1:t3:abce"u8)); // short target
        Assert.Null(LogWire.DecodeRequest("d1:q4:push1:t20:aaaaaaaaaaaaaaaaaaaae"u8)); // unknown kind
        Assert.Null(LogWire.DecodeRequest("d1:ai-1e1:q4:head1:t20:aaaaaaaaaaaaaaaaaaaae"u8)); // negative index
        Assert.Null(LogWire.DecodeReply("d1:pl3:abcee"u8)); // a proof hash that is not 32 bytes
        Assert.Null(LogWire.DecodeReply("d1:r3:abce"u8)); // a root that is not 32 bytes
        var tooLong = "d1:pl" + string.Concat(Enumerable.Repeat("32:" + new string('a', 32), LogWire.MaxProofHashes + 1)) + "ee";
        Assert.Null(LogWire.DecodeReply(System.Text.Encoding.ASCII.GetBytes(tooLong)));
        Assert.Null(LogWire.DecodeReply("le"u8));
    }

    [Fact]
    public async Task A_frame_over_the_limit_or_cut_short_reads_as_null()
    {
        var big = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(big, LogWire.MaxRequestLength + 1);
        Assert.Null(await LogWire.ReadFrameAsync(new MemoryStream(big), LogWire.MaxRequestLength, CancellationToken.None));
        Assert.Null(await LogWire.ReadFrameAsync(new MemoryStream([0, 0, 0, 9, 1, 2]), LogWire.MaxRequestLength, CancellationToken.None));
        var stream = new MemoryStream();
        await LogWire.WriteFrameAsync(stream, "abc"u8.ToArray(), CancellationToken.None);
        stream.Position = 0;
        Assert.Equal("abc"u8.ToArray(), await LogWire.ReadFrameAsync(stream, 10, CancellationToken.None));
    }

    [Property(MaxTest = 2000)]
    public bool Random_bytes_never_throw(byte[] data)
    {
        _ = LogWire.DecodeRequest(data);
        _ = LogWire.DecodeReply(data);
        return true;
    }

    [Property(MaxTest = 2000)]
    public Property Mutated_messages_never_throw() =>
        Prop.ForAll(
            Gen.Choose(0, 40).SelectMany(i => Gen.Choose(0, 255).Select(b => (i, (byte)b))).ToArbitrary(),
            mutation =>
            {
                var request = LogWire.EncodeRequest(new LogRequest(LogRequestKind.Entry, Target, 1, 2));
                var reply = LogWire.EncodeReply(new LogReply(2, new byte[32], new byte[64], [1, 2, 3], [new byte[32]], null));
                request[mutation.i % request.Length] = mutation.Item2;
                reply[mutation.i % reply.Length] = mutation.Item2;
                _ = LogWire.DecodeRequest(request);
                _ = LogWire.DecodeReply(reply);
                return true;
            });
}
