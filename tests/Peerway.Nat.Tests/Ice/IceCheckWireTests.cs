using System.Net;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Ice;
using Peerway.Nat.Stun;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Nat.Tests.Ice;

/// <summary>Connectivity checks on the wire (RFC 8445 §7.2.2, §7.3), seen by a raw peer socket.</summary>
public sealed class IceCheckWireTests : IDisposable
{
    private const string PeerUfrag = "peerufrag";
    private const string PeerPassword = "peer-password-123456";
    private readonly FakeTimeProvider _time = new();
    private readonly DeterministicScheduler _scheduler;
    private readonly IceAgent _agent;
    private readonly VirtualDatagramSocket _peer;
    private readonly List<(byte[] Data, IPEndPoint From)> _received = [];

    public IceCheckWireTests()
    {
        _scheduler = new DeterministicScheduler(_time);
        var net = new VirtualNetwork(_scheduler);
        _agent = new IceAgent(net.CreateSocket(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 5000)), _time, new IceAgentOptions { Role = IceRole.Controlling });
        _peer = net.CreateSocket(new IPEndPoint(IPAddress.Parse("192.0.2.2"), 6000));
        _peer.Start((d, from) => _received.Add((d.ToArray(), from)));
        _agent.SetRemoteCredentials(PeerUfrag, PeerPassword);
        _agent.Start();
    }

    public void Dispose()
    {
        _agent.Dispose();
        _peer.Dispose();
    }

    private byte[] Check(string password, ulong tieBreaker = 1, bool controlling = false)
    {
        var buffer = new byte[256];
        var w = new StunWriter(buffer, StunMethod.Binding, StunClass.Request, StunClient.NewTransactionId());
        w.AddUtf8(StunAttributeType.Username, _agent.LocalUfrag + ":" + PeerUfrag);
        w.AddUInt32(StunAttributeType.Priority, IceCandidate.ComputePriority(IceCandidateType.PeerReflexive));
        w.AddUInt64(controlling ? StunAttributeType.IceControlling : StunAttributeType.IceControlled, tieBreaker);
        w.AddMessageIntegrity(Encoding.UTF8.GetBytes(password));
        w.AddFingerprint();
        return buffer[..w.Length];
    }

    private List<StunMessage> Drain()
    {
        _scheduler.RunDue();
        var messages = _received.Select(r => StunMessage.TryDecode(r.Data, out var m, out _) ? m! : null).OfType<StunMessage>().ToList();
        _received.Clear();
        return messages;
    }

    [Fact]
    public void Valid_check_is_answered_and_triggers_a_check_back_at_once()
    {
        var request = Check(_agent.LocalPassword);
        _peer.Send(request, _agent.LocalCandidates[0].Address);
        var messages = Drain();
        Assert.Equal(2, messages.Count);
        var answer = messages.Single(m => m.Class != StunClass.Request);
        Assert.Equal(StunClass.SuccessResponse, answer.Class);
        Assert.True(answer.TransactionId.SequenceEqual(request.AsSpan(8, 12)));
        Assert.True(answer.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped));
        Assert.Equal(_peer.LocalEndPoint, mapped);
        Assert.True(StunAttributes.VerifyIntegrity(answer, Encoding.UTF8.GetBytes(_agent.LocalPassword)));
        Assert.True(StunAttributes.VerifyFingerprint(answer));

        // No check went out for Ta, so the triggered check does not wait for the next tick; in the peer's credentials.
        var check = messages.Single(m => m.Class == StunClass.Request);
        Assert.True(check.TryGetText(StunAttributeType.Username, 508, out var user));
        Assert.Equal(PeerUfrag + ":" + _agent.LocalUfrag, user);
        Assert.True(check.TryGetUInt32(StunAttributeType.Priority, out var priority));
        Assert.Equal((110u << 24) + (65535u << 8) + 255, priority);
        Assert.True(check.TryGetUInt64(StunAttributeType.IceControlling, out _));
        Assert.False(check.Has(StunAttributeType.IceControlled));
        Assert.True(StunAttributes.VerifyIntegrity(check, Encoding.UTF8.GetBytes(PeerPassword)));
        Assert.True(StunAttributes.VerifyFingerprint(check));
    }

    [Fact]
    public void A_triggered_check_within_ta_of_the_last_check_waits_for_the_tick()
    {
        _peer.Send(Check(_agent.LocalPassword), _agent.LocalCandidates[0].Address);
        Assert.Equal(2, Drain().Count);

        // The peer checks us again 10 ms later (a new transaction): answered at once, but our check back keeps the
        // pace (RFC 8445 §6.1.4.2, one check per Ta) and goes out at the tick, 50 ms after the first.
        _time.Advance(TimeSpan.FromMilliseconds(10));
        _scheduler.RunDue();
        _peer.Send(Check(_agent.LocalPassword), _agent.LocalCandidates[0].Address);
        var answers = Drain();
        Assert.All(answers, m => Assert.NotEqual(StunClass.Request, m.Class));
        _time.Advance(TimeSpan.FromMilliseconds(40));
        Assert.Contains(Drain(), m => m.Class == StunClass.Request);
    }

    [Fact]
    public void Check_with_wrong_integrity_gets_no_answer()
    {
        _peer.Send(Check("not-the-password"), _agent.LocalCandidates[0].Address);
        Assert.Empty(Drain());
    }

    [Fact]
    public void Controlling_peer_with_larger_tie_breaker_makes_us_controlled()
    {
        _peer.Send(Check(_agent.LocalPassword, ulong.MaxValue, controlling: true), _agent.LocalCandidates[0].Address);
        var answer = Drain().Single(m => m.Class != StunClass.Request);
        Assert.Equal(StunClass.SuccessResponse, answer.Class);
        Assert.Equal(IceRole.Controlled, _agent.Role);
    }

    [Fact]
    public void Controlling_peer_with_smaller_tie_breaker_gets_487()
    {
        _peer.Send(Check(_agent.LocalPassword, 0, controlling: true), _agent.LocalCandidates[0].Address);
        var answer = Drain().Single();
        Assert.Equal(StunClass.ErrorResponse, answer.Class);
        Assert.True(answer.TryGetErrorCode(out var code, out _));
        Assert.Equal(StunErrorCode.RoleConflict, code);
        Assert.Equal(IceRole.Controlling, _agent.Role);
    }

    [FsCheck.Xunit.Property(MaxTest = 500)]
    public Property Random_and_mutated_datagrams_never_break_the_agent(byte[] noise, int position, byte value)
    {
        var valid = Check(_agent.LocalPassword);
        valid[(int)((uint)position % valid.Length)] ^= value;
        _peer.Send(noise, _agent.LocalCandidates[0].Address);
        _peer.Send(valid, _agent.LocalCandidates[0].Address);
        _scheduler.RunDue();
        _time.Advance(TimeSpan.FromMilliseconds(50));
        _scheduler.RunDue();
        return Prop.ToProperty(_agent.State == IceState.Checking);
    }

    private sealed class ScriptedChannel : ISignalingChannel
    {
        public Action<string>? Deliver { get; private set; }

        public List<string> Sent { get; } = [];

        public Task SendAsync(string message, CancellationToken cancellationToken = default)
        {
            Sent.Add(message);
            return Task.CompletedTask;
        }

        public void Start(Action<string> onMessage) => Deliver = onMessage;
    }

    [Fact]
    public void Signaling_accepts_credentials_in_either_order_and_sends_ours()
    {
        var net = new VirtualNetwork(_scheduler);
        using var agent = new IceAgent(net.CreateSocket(new IPEndPoint(IPAddress.Parse("192.0.2.3"), 5000)), _time, new IceAgentOptions());
        var channel = new ScriptedChannel();
        IceSignaling.Attach(agent, channel);
        agent.Start();
        Assert.Contains("a=ice-ufrag:" + agent.LocalUfrag, channel.Sent);
        Assert.Contains("a=ice-pwd:" + agent.LocalPassword, channel.Sent);
        Assert.Contains(channel.Sent, l => l.StartsWith("a=candidate:", StringComparison.Ordinal) && l.EndsWith("typ host", StringComparison.Ordinal));

        var peer = net.CreateSocket(new IPEndPoint(IPAddress.Parse("192.0.2.4"), 6000));
        var checks = new List<byte[]>();
        peer.Start((d, _) => checks.Add(d.ToArray()));
        channel.Deliver!("a=ice-pwd:" + PeerPassword);
        channel.Deliver("a=candidate:1 1 udp 2130706431 192.0.2.4 6000 typ host");
        channel.Deliver("a=ice-ufrag:" + PeerUfrag);
        _time.Advance(TimeSpan.FromMilliseconds(50));
        _scheduler.RunDue();
        var check = Assert.Single(checks);
        Assert.True(StunMessage.TryDecode(check, out var m, out _));
        Assert.True(StunAttributes.VerifyIntegrity(m!, Encoding.UTF8.GetBytes(PeerPassword)));
    }
}
