using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Net;
using Peerway.Torrent.Lsd;

namespace Peerway.Node;

/// <summary>
/// The sockets of BEP 14 Local Service Discovery: one UDP socket per address family bound to port 6771 with
/// SO_REUSEADDR (libtorrent and other clients on the host bind it too), joined to the group, multicast loop on (two
/// clients on one host find each other; our own announces come back and are told apart by the cookie), TTL 32
/// (libtorrent's hops). A family whose socket cannot be made or joined (no route for multicast, no IPv6) is logged
/// and left out.
/// </summary>
internal static class LsdSockets
{
    /// <summary>The channels that could be opened on <paramref name="bind"/>'s interface (any: the kernel's route for the group).</summary>
    public static List<LsdChannel> Open(IPAddress bind, ILogger log)
    {
        var channels = new List<LsdChannel>();
        foreach (var group in new[] { LsdCodec.GroupV4, LsdCodec.GroupV6 })
        {
            var v6 = group.AddressFamily == AddressFamily.InterNetworkV6;
            // A socket bound to one address family's address announces only on that family.
            if (!bind.Equals(IPAddress.Any) && !bind.Equals(IPAddress.IPv6Any) && bind.AddressFamily != group.AddressFamily) continue;
            try
            {
                channels.Add(new LsdChannel(new MulticastSocket(group, v6 ? null : bind), group));
            }
            catch (SocketException ex)
            {
                log.LogWarning("LSD: no {Group} multicast ({Message}); local peers are not discovered over {Family}", group, ex.Message, v6 ? "IPv6" : "IPv4");
            }
        }

        return channels;
    }

    /// <summary>A UDP socket joined to one multicast group, receiving on an asynchronous loop.</summary>
    private sealed class MulticastSocket : IDatagramSocket
    {
        private readonly Socket _socket;
        private readonly CancellationTokenSource _stop = new();
        private Task? _loop;

        public MulticastSocket(IPEndPoint group, IPAddress? outbound)
        {
            var v6 = group.AddressFamily == AddressFamily.InterNetworkV6;
            _socket = new Socket(group.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                _socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                if (v6)
                {
                    _socket.DualMode = false;
                    _socket.Bind(new IPEndPoint(IPAddress.IPv6Any, group.Port));
                    _socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.AddMembership, new IPv6MulticastOption(group.Address));
                    _socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastTimeToLive, 32);
                    _socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastLoopback, true);
                }
                else
                {
                    var local = outbound is null || outbound.Equals(IPAddress.Any) ? IPAddress.Any : outbound;
                    _socket.Bind(new IPEndPoint(IPAddress.Any, group.Port));
                    _socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.AddMembership, new MulticastOption(group.Address, local));
                    _socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastTimeToLive, 32);
                    _socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastLoopback, true);
                    if (!local.Equals(IPAddress.Any)) _socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastInterface, local.GetAddressBytes());
                }
            }
            catch
            {
                _socket.Dispose();
                throw;
            }

            LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        }

        public IPEndPoint LocalEndPoint { get; }

        public void Start(DatagramHandler handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            if (_loop is not null) throw new InvalidOperationException("The socket is already started.");
            _loop = Task.Run(() => ReceiveAsync(handler, _stop.Token));
        }

        private async Task ReceiveAsync(DatagramHandler handler, CancellationToken ct)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(LsdCodec.MaxMessageSize + 1);
            EndPoint any = new IPEndPoint(LocalEndPoint.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    SocketReceiveFromResult r;
                    try
                    {
                        r = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, ct);
                    }
                    catch (SocketException)
                    {
                        // A truncated (oversized) datagram or an ICMP error: not fatal for UDP.
                        continue;
                    }

                    handler(buffer.AsSpan(0, r.ReceivedBytes), (IPEndPoint)r.RemoteEndPoint);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException && ct.IsCancellationRequested)
            {
                // Disposed.
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            try
            {
                _socket.SendTo(datagram, SocketFlags.None, remote);
            }
            catch (SocketException)
            {
                // UDP semantics: a send that fails (no route for the group) is lost, as any datagram may be.
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Dispose();
#pragma warning disable VSTHRD002 // the loop ends at once: its socket is closed and its token cancelled
            try
            {
                _loop?.Wait(TimeSpan.FromSeconds(5));
            }
            catch (AggregateException ex) when (ex.InnerExceptions.All(e => e is OperationCanceledException))
            {
                // Ended by the cancellation.
            }
#pragma warning restore VSTHRD002
            _stop.Dispose();
        }
    }
}
