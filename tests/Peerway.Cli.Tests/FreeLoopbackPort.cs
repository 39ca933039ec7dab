using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Cli.Tests;

/// <summary>A TCP port with nothing listening on 127.0.0.1 at the time of the call (for "connection refused" or a server's --port).</summary>
internal static class FreeLoopbackPort
{
    public static int Tcp()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    public static string TcpText() => Tcp().ToString(CultureInfo.InvariantCulture);
}
