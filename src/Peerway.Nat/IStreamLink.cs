using System.Net;

namespace Peerway.Nat;

/// <summary>
/// One client connection over a byte stream (TCP), as STUN/TURN servers see it: framed messages in (cut with
/// <see cref="Stun.StunFraming"/>), whole frames out. Implemented by the hosting layer.
/// </summary>
public interface IStreamLink
{
    /// <summary>The client's address (the far end of the connection).</summary>
    IPEndPoint RemoteEndPoint { get; }

    /// <summary>The server's address this connection was accepted on.</summary>
    IPEndPoint LocalEndPoint { get; }

    /// <summary>Queues one frame; silently dropped once the link is closed.</summary>
    void Send(ReadOnlySpan<byte> frame);

    /// <summary>Closes the connection; frames sent afterwards are dropped.</summary>
    void Close();
}
