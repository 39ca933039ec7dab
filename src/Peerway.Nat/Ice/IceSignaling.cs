using Peerway.Core.Threading;

namespace Peerway.Nat.Ice;

/// <summary>
/// A pluggable, message-oriented signaling path to one peer (an HTTP relay, a WebSocket, a chat…). Messages are
/// single lines; order within one direction is expected to be preserved.
/// </summary>
public interface ISignalingChannel
{
    /// <summary>Sends one line to the peer.</summary>
    Task SendAsync(string message, CancellationToken cancellationToken = default);

    /// <summary>Begins delivering the peer's messages to <paramref name="onMessage"/>. Call once.</summary>
    void Start(Action<string> onMessage);
}

/// <summary>
/// Trickles an agent's credentials and candidates over an <see cref="ISignalingChannel"/> as SDP attribute lines
/// (RFC 8839 §5: <c>a=ice-ufrag</c>, <c>a=ice-pwd</c>, <c>a=candidate</c>; RFC 8840 §4.1: <c>a=end-of-candidates</c>),
/// and feeds the peer's lines to the agent. Unparseable lines are ignored.
/// </summary>
public static class IceSignaling
{
    /// <summary>
    /// Wires <paramref name="agent"/> to <paramref name="channel"/>; call before <see cref="IceAgent.Start"/>. Dispose
    /// the returned link (before the agent) to stop trickling and await the sends still under way.
    /// </summary>
    public static IceSignalingLink Attach(IceAgent agent, ISignalingChannel channel)
    {
        ArgumentNullException.ThrowIfNull(agent);
        ArgumentNullException.ThrowIfNull(channel);
        string? ufrag = null, password = null;
        channel.Start(line =>
        {
            // The two credential lines may arrive in either order.
            if (line.StartsWith("a=ice-ufrag:", StringComparison.Ordinal) && line.Length > "a=ice-ufrag:".Length) ufrag = line["a=ice-ufrag:".Length..];
            else if (line.StartsWith("a=ice-pwd:", StringComparison.Ordinal) && line.Length > "a=ice-pwd:".Length) password = line["a=ice-pwd:".Length..];
            else if (line == "a=end-of-candidates") agent.AddRemoteEndOfCandidates();
            else if (IceCandidate.TryParse(line, out var c)) agent.AddRemoteCandidate(c!);
            if (ufrag is not null && password is not null && line.StartsWith("a=ice-", StringComparison.Ordinal)) agent.SetRemoteCredentials(ufrag, password);
        });
        return new IceSignalingLink(agent, channel);
    }
}

/// <summary>
/// An agent wired to a signaling channel by <see cref="IceSignaling.Attach"/>. It keeps every send it starts;
/// <see cref="DisposeAsync"/> unhooks it from the agent and awaits them, rethrowing a send that failed.
/// </summary>
public sealed class IceSignalingLink : IAsyncDisposable
{
    private readonly IceAgent _agent;
    private readonly ISignalingChannel _channel;
    private readonly BackgroundTasks _sends = new();

    internal IceSignalingLink(IceAgent agent, ISignalingChannel channel)
    {
        _agent = agent;
        _channel = channel;
        Send("a=ice-ufrag:" + agent.LocalUfrag);
        Send("a=ice-pwd:" + agent.LocalPassword);
        agent.LocalCandidateGathered += OnCandidateGathered;
        agent.GatheringComplete += OnGatheringComplete;
    }

    /// <summary>Sends still under way.</summary>
    internal int PendingSends => _sends.Count;

    /// <summary>Stops trickling the agent's candidates and waits for the sends under way.</summary>
    public async ValueTask DisposeAsync()
    {
        _agent.LocalCandidateGathered -= OnCandidateGathered;
        _agent.GatheringComplete -= OnGatheringComplete;
        await _sends.WhenAllAsync().ConfigureAwait(false);
    }

    private void OnCandidateGathered(object? sender, IceCandidate candidate) => Send("a=" + candidate.ToSdp());

    // RFC 8840 §4.1: end-of-candidates once gathering is over.
    private void OnGatheringComplete(object? sender, EventArgs e) => Send("a=end-of-candidates");

    private void Send(string line) => _sends.Track(_channel.SendAsync(line));
}
