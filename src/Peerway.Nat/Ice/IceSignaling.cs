namespace Peerway.Nat.Ice;

/// <summary>
/// A pluggable, message-oriented signaling path to one peer (an HTTP relay, a WebSocket, a chat…). Messages are
/// single lines; order within one direction is expected to be preserved.
/// </summary>
public interface ISignalingChannel
{
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
    /// <summary>Wires <paramref name="agent"/> to <paramref name="channel"/>; call before <see cref="IceAgent.Start"/>.</summary>
    public static void Attach(IceAgent agent, ISignalingChannel channel)
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
        _ = channel.SendAsync("a=ice-ufrag:" + agent.LocalUfrag);
        _ = channel.SendAsync("a=ice-pwd:" + agent.LocalPassword);
        agent.LocalCandidateGathered += (_, c) => _ = channel.SendAsync("a=" + c.ToSdp());
        agent.GatheringComplete += (_, _) => _ = channel.SendAsync("a=end-of-candidates");
    }
}
