using System.Net;

namespace Peerway.Nat;

/// <summary>
/// One client connection over a byte stream (TCP), as STUN/TURN servers see it: framed messages in (cut with
/// <see cref="Stun.StunFraming"/>), whole frames out. Implemented by the hosting layer.
/// </summary>
public interface IStreamLink
{
    IPEndPoint RemoteEndPoint { get; }

    IPEndPoint LocalEndPoint { get; }

    /// <summary>Queues one frame; silently dropped once the link is closed.</summary>
    void Send(ReadOnlySpan<byte> frame);

    void Close();
}
