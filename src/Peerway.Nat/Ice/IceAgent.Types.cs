using System.Buffers.Binary;
using System.Net;
using Peerway.Net;

namespace Peerway.Nat.Ice;

/// <summary>IceAgent, its private types: pairs, checks, transaction keys and the datagram path handed to the caller.</summary>
public sealed partial class IceAgent
{
    private enum PairState
    {
        Frozen,
        Waiting,
        InProgress,
        Succeeded,
        Failed,
    }

    private sealed class Pair(IceCandidate local, IceCandidate remote, string foundation)
    {
        public IceCandidate Local { get; } = local;

        public IceCandidate Remote { get; set; } = remote;

        public string Foundation { get; } = foundation;

        public PairState State { get; set; }

        public ulong Priority { get; set; }

        public IceCandidate? ValidLocal { get; set; }

        public bool Nominated { get; set; }

        public bool NominateOnSuccess { get; set; }

        public TxKey? LastTrigger { get; set; }

        public bool Queued { get; set; }
    }

    /// <summary>An additional host socket and, once started, its host candidate.</summary>
    private sealed class HostSocket(IDatagramSocket socket)
    {
        public IDatagramSocket Socket { get; } = socket;

        public IceCandidate? Candidate { get; set; }
    }

    private sealed class Check(Pair pair, byte[] request, bool useCandidate, bool consent, IceRole role)
    {
        public Pair Pair { get; } = pair;

        public byte[] Request { get; } = request;

        public bool UseCandidate { get; } = useCandidate;

        public bool Consent { get; } = consent;

        public IceRole Role { get; } = role;

        public int Sent { get; set; }

        public TimeSpan Rto { get; set; }

        public DateTimeOffset Due { get; set; }

        /// <summary>RFC 8445 §7.3.1.4: replaced by a triggered check; not retransmitted, its answer still counts.</summary>
        public bool Cancelled { get; set; }
    }

    private readonly record struct TxKey(ulong High, uint Low)
    {
        public static TxKey From(ReadOnlySpan<byte> id) =>
            new(BinaryPrimitives.ReadUInt64BigEndian(id), BinaryPrimitives.ReadUInt32BigEndian(id[8..]));
    }

    /// <summary>The datagram path handed to the caller: sends to the selected remote, delivers its non-STUN datagrams.</summary>
    private sealed class IcePath(IceAgent agent) : IDatagramSocket
    {
        public DatagramHandler? Handler { get; private set; }

        public IPEndPoint LocalEndPoint => agent.PathLocalEndPoint;

        public void Start(DatagramHandler handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            if (Handler is not null) throw new InvalidOperationException("The path is already started.");
            Handler = handler;
        }

        /// <summary>Sends to the selected remote candidate; <paramref name="remote"/> is ignored.</summary>
        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote) => agent.SendData(datagram);

        public void Dispose() => agent.Dispose();
    }
}
