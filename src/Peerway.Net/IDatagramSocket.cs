using System.Net;

namespace Peerway.Net;

/// <summary>Receives one datagram. Invoked serially (never concurrently) for a given socket.</summary>
/// <remarks>The span is valid only during the call: copy what must outlive it.</remarks>
public delegate void DatagramHandler(ReadOnlySpan<byte> datagram, IPEndPoint remote);

/// <summary>
/// A datagram endpoint with UDP semantics: best-effort, unordered, unreliable. Engines take this instead of a socket
/// so the same code runs over real UDP (<see cref="UdpDatagramSocket"/>), the in-memory <see cref="VirtualNetwork"/>,
/// and the simulator.
/// </summary>
/// <remarks>
/// Push model: the socket calls the handler given to <see cref="Start"/> for each datagram, one at a time. This keeps
/// engines deterministic under a simulated scheduler (no receive loops racing each other).
/// </remarks>
public interface IDatagramSocket : IDisposable
{
    /// <summary>The bound local address and port.</summary>
    IPEndPoint LocalEndPoint { get; }

    /// <summary>Begins delivering datagrams to <paramref name="handler"/>. Call once.</summary>
    void Start(DatagramHandler handler);

    /// <summary>Sends a datagram without blocking. Losses and errors are silent, as with UDP.</summary>
    void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote);
}
