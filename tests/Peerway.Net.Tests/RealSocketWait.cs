using System.Net;
using System.Net.Sockets;

namespace Peerway.Net.Tests;

/// <summary>Waits on state that real sockets change: datagrams crossing the kernel, a port being freed.</summary>
internal static class RealSocketWait
{
    /// <summary>Polling with a deadline for datagrams crossing the real kernel (an external observable state).</summary>
    public static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the condition did not hold in time");
            await Task.Yield();
        }
    }

    /// <summary>Whether a UDP socket could bind <paramref name="endPoint"/> now (the port is free).</summary>
    public static bool CanBind(IPEndPoint endPoint)
    {
        try
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            probe.Bind(endPoint);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
