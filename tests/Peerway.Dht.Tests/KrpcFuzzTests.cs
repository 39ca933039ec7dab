using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Peerway.Dht.Tests;

public sealed class KrpcFuzzTests
{
    private static readonly byte[][] Valid = KrpcCodecTests.Bep5Texts.Select(Encoding.ASCII.GetBytes).ToArray();

    [Property(MaxTest = 2000)]
    public bool Random_bytes_never_throw(byte[] data)
    {
        var error = KrpcCodec.Decode(data, new KrpcMessage());
        return Enum.IsDefined(error);
    }

    [Property(MaxTest = 5000)]
    public Property Mutated_valid_messages_never_throw() =>
        Prop.ForAll(
            Gen.Elements(Valid).SelectMany(v => Gen.Choose(0, v.Length - 1).SelectMany(i => Gen.Choose(0, 255).SelectMany(b => Gen.Choose(0, 3).Select(op => Mutate(v, i, (byte)b, op))))).ToArbitrary(),
            mutated =>
            {
                var m = new KrpcMessage();
                var error = KrpcCodec.Decode(mutated, m);
                if (error == KrpcError.None)
                {
                    // Anything accepted re-encodes and decodes to the same transaction id.
                    var buffer = new byte[KrpcCodec.MaxDatagramLength];
                    var n = KrpcCodec.Encode(m, buffer);
                    if (n > 0)
                    {
                        var again = new KrpcMessage();
                        return KrpcCodec.Decode(buffer.AsSpan(0, n), again) == KrpcError.None && again.TransactionId.SequenceEqual(m.TransactionId);
                    }
                }

                return Enum.IsDefined(error);
            });

    private static byte[] Mutate(byte[] valid, int index, byte value, int op) => op switch
    {
        0 => valid.Select((b, i) => i == index ? value : b).ToArray(),            // replace a byte
        1 => valid[..index],                                                     // truncate
        2 => [.. valid[..index], value, .. valid[index..]],                      // insert a byte
        _ => [.. valid[..index], .. valid[(index + 1)..]],                       // delete a byte
    };
}
