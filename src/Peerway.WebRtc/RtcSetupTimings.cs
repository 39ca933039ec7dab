using System.Globalization;
using System.Text;
using Peerway.Nat.Ice;

namespace Peerway.WebRtc;

/// <summary>
/// When each step of a peer connection's set-up happened (diagnostics, as a browser's <c>getStats()</c>): the remote
/// description applied, our own description complete, the ICE steps, the DTLS handshake done and the SCTP association
/// established. Null: not reached (yet).
/// </summary>
public sealed record RtcSetupTimings(DateTimeOffset Created)
{
    /// <summary>The peer's offer taken (answerer), or its answer applied (offerer).</summary>
    public DateTimeOffset? RemoteDescription { get; init; }

    /// <summary>Our offer or answer made, every candidate in it.</summary>
    public DateTimeOffset? LocalDescription { get; init; }

    /// <summary>The ICE agent's steps (gathering, checks, nomination).</summary>
    public IceTimings? Ice { get; init; }

    /// <summary>The DTLS handshake completed.</summary>
    public DateTimeOffset? DtlsConnected { get; init; }

    /// <summary>The SCTP association established.</summary>
    public DateTimeOffset? SctpEstablished { get; init; }

    /// <summary>One line: each step in milliseconds after <see cref="Created"/> (ISO 8601), in the order they happened.</summary>
    public override string ToString()
    {
        var steps = new List<(string Name, DateTimeOffset At)>();
        void Add(string name, DateTimeOffset? at)
        {
            if (at is { } t) steps.Add((name, t));
        }

        Add("remote-description", RemoteDescription);
        Add("local-description", LocalDescription);
        Add("ice-first-check", Ice?.FirstCheckSent);
        Add("ice-first-request", Ice?.FirstRequestReceived);
        Add("ice-first-success", Ice?.FirstPairSucceeded);
        Add("ice-selected", Ice?.Selected);
        Add("dtls", DtlsConnected);
        Add("sctp", SctpEstablished);
        var line = new StringBuilder("created ").Append(Created.ToString("O", CultureInfo.InvariantCulture));
        foreach (var (name, at) in steps.OrderBy(s => s.At))
        {
            line.Append(", ").Append(name).Append(" +").Append((at - Created).TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture)).Append(" ms");
        }

        return line.ToString();
    }
}
