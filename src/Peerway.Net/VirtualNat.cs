using System.Net;

namespace Peerway.Net;

/// <summary>RFC 4787 §4.1: how a NAT reuses a mapping for an internal endpoint.</summary>
public enum NatMappingBehavior
{
    /// <summary>One mapping per internal endpoint, whatever the destination ("cone").</summary>
    EndpointIndependent,

    /// <summary>A mapping per destination IP.</summary>
    AddressDependent,

    /// <summary>A mapping per destination IP and port ("symmetric").</summary>
    AddressAndPortDependent,
}

/// <summary>RFC 4787 §5: which inbound packets a NAT lets through to a mapping.</summary>
public enum NatFilteringBehavior
{
    /// <summary>Any external endpoint ("full cone").</summary>
    EndpointIndependent,

    /// <summary>Only IPs the internal endpoint has sent to ("restricted cone").</summary>
    AddressDependent,

    /// <summary>Only IP:port pairs the internal endpoint has sent to ("port-restricted").</summary>
    AddressAndPortDependent,
}

/// <summary>Behaviour of a <see cref="VirtualNat"/>.</summary>
public sealed record VirtualNatOptions
{
    /// <summary>RFC 4787 §4.1 mapping behaviour: when an internal endpoint gets a new external port.</summary>
    public NatMappingBehavior Mapping { get; init; } = NatMappingBehavior.EndpointIndependent;

    /// <summary>RFC 4787 §5 filtering behaviour: which inbound datagrams reach a mapped internal endpoint.</summary>
    public NatFilteringBehavior Filtering { get; init; } = NatFilteringBehavior.EndpointIndependent;

    /// <summary>First external port handed out; ports are allocated sequentially (no port preservation).</summary>
    public int FirstPort { get; init; } = 20_000;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when <see cref="FirstPort"/> is outside 1..65000.</summary>
    public void Validate()
    {
        if (FirstPort is < 1 or > 65_000) throw new ArgumentOutOfRangeException(nameof(FirstPort));
    }
}

/// <summary>
/// A NAT box on a <see cref="VirtualNetwork"/>: hosts on its private /24 reach the rest of the network through one
/// public IP, with RFC 4787 mapping and filtering behaviour. Hosts on the same private /24 reach each other directly.
/// Mappings do not expire (tests that need expiry can dispose the NAT's sockets).
/// </summary>
public sealed class VirtualNat
{
    private readonly VirtualNetwork _network;
    private readonly Lock _gate = new();
    private readonly Dictionary<(IPEndPoint Internal, IPAddress? Ip, int Port), Mapping> _byKey = [];
    private readonly Dictionary<int, Mapping> _byPort = [];
    private int _nextPort;
    private int _nextHost = 1;

    internal VirtualNat(VirtualNetwork network, IPAddress publicAddress, IPNetwork privateNetwork, VirtualNatOptions options)
    {
        _network = network;
        PublicAddress = publicAddress;
        PrivateNetwork = privateNetwork;
        Options = options;
        _nextPort = options.FirstPort;
    }

    /// <summary>The NAT's one public IP on the virtual network.</summary>
    public IPAddress PublicAddress { get; }

    /// <summary>The private /24 behind the NAT.</summary>
    public IPNetwork PrivateNetwork { get; }

    /// <summary>The behaviour the NAT was created with.</summary>
    public VirtualNatOptions Options { get; }

    /// <summary>Inbound datagrams dropped by the filter.</summary>
    public long Filtered { get; private set; }

    /// <summary>External ports mapped so far (mappings do not expire).</summary>
    public int MappingCount
    {
        get
        {
            lock (_gate) return _byPort.Count;
        }
    }

    /// <summary>A socket on a host behind this NAT (next private address, or the one given).</summary>
    public VirtualDatagramSocket CreateSocket(IPEndPoint? privateEndPoint = null)
    {
        if (privateEndPoint is null)
        {
            var b = PrivateNetwork.BaseAddress.GetAddressBytes();
            b[^1] = (byte)Interlocked.Increment(ref _nextHost);
            privateEndPoint = new IPEndPoint(new IPAddress(b), 5000);
        }

        if (!PrivateNetwork.Contains(privateEndPoint.Address)) throw new ArgumentException($"{privateEndPoint} is not in {PrivateNetwork}.");
        return _network.CreateSocket(privateEndPoint);
    }

    /// <summary>RFC 4787 §4.1: the external endpoint for <paramref name="from"/> sending to <paramref name="to"/>.</summary>
    internal IPEndPoint Outbound(IPEndPoint from, IPEndPoint to)
    {
        var key = Options.Mapping switch
        {
            NatMappingBehavior.EndpointIndependent => (from, (IPAddress?)null, 0),
            NatMappingBehavior.AddressDependent => (from, to.Address, 0),
            _ => (from, to.Address, to.Port),
        };
        lock (_gate)
        {
            if (!_byKey.TryGetValue(key, out var mapping))
            {
                mapping = new Mapping(from, new IPEndPoint(PublicAddress, _nextPort++));
                _byKey[key] = mapping;
                _byPort[mapping.External.Port] = mapping;
            }

            // RFC 4787 §5: the filter remembers where the internal endpoint has sent.
            mapping.ContactedIps.Add(to.Address);
            mapping.ContactedEndPoints.Add(to);
            return mapping.External;
        }
    }

    /// <summary>RFC 4787 §5: the internal endpoint for a datagram from <paramref name="from"/> to our public
    /// <paramref name="to"/>, or false when no mapping exists or the filter drops it.</summary>
    internal bool Inbound(IPEndPoint to, IPEndPoint from, out IPEndPoint? internalEndPoint)
    {
        internalEndPoint = null;
        lock (_gate)
        {
            if (!_byPort.TryGetValue(to.Port, out var mapping)) return false;
            var allowed = Options.Filtering switch
            {
                NatFilteringBehavior.EndpointIndependent => true,
                NatFilteringBehavior.AddressDependent => mapping.ContactedIps.Contains(from.Address),
                _ => mapping.ContactedEndPoints.Contains(from),
            };
            if (!allowed)
            {
                Filtered++;
                return false;
            }

            internalEndPoint = mapping.Internal;
            return true;
        }
    }

    private sealed class Mapping(IPEndPoint @internal, IPEndPoint external)
    {
        public IPEndPoint Internal { get; } = @internal;

        public IPEndPoint External { get; } = external;

        public HashSet<IPAddress> ContactedIps { get; } = [];

        public HashSet<IPEndPoint> ContactedEndPoints { get; } = [];
    }
}
