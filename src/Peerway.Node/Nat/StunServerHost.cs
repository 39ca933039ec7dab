using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Nat.Stun;
using Peerway.Net;

namespace Peerway.Node.Nat;

/// <summary>
/// Runs a <see cref="StunServer"/> on real sockets: UDP on the primary address (and, with an alternate IP, the four
/// RFC 5780 addresses: port and port+1 on both IPs) and TCP on the primary address.
/// </summary>
public sealed class StunServerHost : IAsyncDisposable
{
    private readonly StunServer _server;
    private readonly TcpFrameListener _tcp;

    private StunServerHost(StunServer server, TcpFrameListener tcp, IReadOnlyList<IPEndPoint> udp)
    {
        _server = server;
        _tcp = tcp;
        UdpEndPoints = udp;
    }

    public IReadOnlyList<IPEndPoint> UdpEndPoints { get; }

    public IPEndPoint TcpEndPoint => _tcp.LocalEndPoint;

    public StunServer Server => _server;

    public static StunServerHost Start(IPAddress bind, int port, IPAddress? alternate, StunServerOptions options, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(bind);
        ArgumentNullException.ThrowIfNull(loggers);
        var sockets = new List<IDatagramSocket>();
        try
        {
            var primary = new UdpDatagramSocket(new IPEndPoint(bind, port));
            sockets.Add(primary);
            port = primary.LocalEndPoint.Port;
            if (alternate is not null)
            {
                sockets.Add(new UdpDatagramSocket(new IPEndPoint(bind, port + 1)));
                sockets.Add(new UdpDatagramSocket(new IPEndPoint(alternate, port)));
                sockets.Add(new UdpDatagramSocket(new IPEndPoint(alternate, port + 1)));
            }

            var server = new StunServer(sockets, options, loggers.CreateLogger<StunServer>());
            var tcp = new TcpFrameListener(new IPEndPoint(bind, port), (link, frame) =>
            {
                Span<byte> response = stackalloc byte[StunServer.MaxResponseSize];
                // RFC 5780 §6.1: CHANGE-REQUEST only applies to UDP.
                var n = server.Respond(frame, link.RemoteEndPoint, 0, allowChange: false, response, out _, out _);
                if (n > 0) link.Send(response[..n]);
            }, log: loggers.CreateLogger<TcpFrameListener>());
            server.Start();
            tcp.Start();
            return new StunServerHost(server, tcp, [.. sockets.Select(s => s.LocalEndPoint)]);
        }
        catch (Exception)
        {
            foreach (var s in sockets) s.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _tcp.DisposeAsync();
        _server.Dispose();
    }
}
