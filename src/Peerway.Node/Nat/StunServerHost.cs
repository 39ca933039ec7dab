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
    private readonly IReadOnlyList<StunServer> _servers;
    private readonly TcpFrameListener _tcp;

    private StunServerHost(IReadOnlyList<StunServer> servers, TcpFrameListener tcp, IReadOnlyList<IPEndPoint> udp)
    {
        _servers = servers;
        _tcp = tcp;
        UdpEndPoints = udp;
    }

    public IReadOnlyList<IPEndPoint> UdpEndPoints { get; }

    public IPEndPoint TcpEndPoint => _tcp.LocalEndPoint;

    /// <summary>The first replica (all of them when there is one).</summary>
    public StunServer Server => _servers[0];

    public long Answered => _servers.Sum(s => s.Answered);

    public long Dropped => _servers.Sum(s => s.Dropped);

    /// <summary>UDP requests left unanswered by the per-source limit (<see cref="StunServerOptions.MaxRequestsPerIpPerSecond"/>).</summary>
    public long RateLimited => _servers.Sum(s => s.RateLimited);

    /// <param name="replicas">Servers sharing the ports through SO_REUSEPORT (Linux), one receive thread each (batched
    /// recvmmsg/sendmmsg on Linux); 1 elsewhere.</param>
    public static StunServerHost Start(IPAddress bind, int port, IPAddress? alternate, StunServerOptions options, ILoggerFactory loggers, int replicas = 1)
    {
        ArgumentNullException.ThrowIfNull(bind);
        ArgumentNullException.ThrowIfNull(loggers);
        if (!OperatingSystem.IsLinux()) replicas = 1;
        var reuse = replicas > 1;
        var all = new List<IDatagramSocket>();
        try
        {
            var servers = new List<StunServer>();
            for (var r = 0; r < replicas; r++)
            {
                var sockets = new List<IDatagramSocket>();
                var primary = new UdpDatagramSocket(new IPEndPoint(bind, port), reuse, dedicatedThread: true);
                all.Add(primary);
                sockets.Add(primary);
                port = primary.LocalEndPoint.Port;
                if (alternate is not null)
                {
                    foreach (var ep in new[] { new IPEndPoint(bind, port + 1), new IPEndPoint(alternate, port), new IPEndPoint(alternate, port + 1) })
                    {
                        var s = new UdpDatagramSocket(ep, reuse, dedicatedThread: true);
                        all.Add(s);
                        sockets.Add(s);
                    }
                }

                servers.Add(new StunServer(sockets, options, loggers.CreateLogger<StunServer>()));
            }

            var first = servers[0];
            var tcp = new TcpFrameListener(new IPEndPoint(bind, port), (link, frame) =>
            {
                Span<byte> response = stackalloc byte[StunServer.MaxResponseSize];
                // RFC 5780 §6.1: CHANGE-REQUEST only applies to UDP.
                var n = first.Respond(frame, link.RemoteEndPoint, 0, allowChange: false, response, out _, out _);
                if (n > 0) link.Send(response[..n]);
            }, log: loggers.CreateLogger<TcpFrameListener>());
            foreach (var server in servers) server.Start();
            tcp.Start();
            return new StunServerHost(servers, tcp, [.. all.Take(alternate is null ? 1 : 4).Select(s => s.LocalEndPoint)]);
        }
        catch (Exception)
        {
            foreach (var s in all) s.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _tcp.DisposeAsync();
        foreach (var s in _servers) s.Dispose();
    }
}
