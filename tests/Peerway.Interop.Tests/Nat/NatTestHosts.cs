using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Nat.Stun;
using Peerway.Node.Nat;

namespace Peerway.Interop.Tests.Nat;

/// <summary>Starts our servers on loopback ports that are free (retrying on a race with another test).</summary>
internal static class NatTestHosts
{
    public static int FreeUdpPort(IPAddress bind)
    {
        using var s = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(bind, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    public static StunServerHost StartStun(IPAddress bind, IPAddress? alternate)
    {
        for (var attempt = 0; ; attempt++)
        {
            var port = FreeUdpPort(bind);
            try
            {
                return StunServerHost.Start(bind, port, alternate, new StunServerOptions(), NullLoggerFactory.Instance);
            }
            catch (SocketException) when (attempt < 20)
            {
                // Port+1 or the TCP port was taken: try another.
            }
        }
    }
}
