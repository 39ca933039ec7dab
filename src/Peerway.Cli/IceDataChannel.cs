using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Peerway.Nat.Ice;
using Peerway.Net;
using Peerway.WebRtc;
using Peerway.WebRtc.DataChannels;
using Peerway.WebRtc.Dtls;

namespace Peerway.Cli;

/// <summary>
/// Passes the DTLS fingerprint (RFC 8122 §5, as an <c>a=fingerprint:</c> line) over the ICE signaling channel beside
/// the candidates, for <c>peerway connect --datachannel</c>; every other line goes to <see cref="IceSignaling"/>.
/// </summary>
internal sealed class FingerprintSignaling(ISignalingChannel inner) : ISignalingChannel
{
    public const string Prefix = "a=fingerprint:";

    private readonly TaskCompletionSource<string> _fingerprint = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The peer's <c>sha-256 AB:CD:…</c>, once its line arrived.</summary>
    public Task<string> Fingerprint => _fingerprint.Task;

    public Task SendAsync(string message, CancellationToken cancellationToken = default) => inner.SendAsync(message, cancellationToken);

    public void Start(Action<string> onMessage) => inner.Start(line =>
    {
        if (line.StartsWith(Prefix, StringComparison.Ordinal)) _fingerprint.TrySetResult(line[Prefix.Length..]);
        else onMessage(line);
    });
}

/// <summary>
/// <c>peerway connect --datachannel</c>: a WebRTC data channel (DTLS 1.2, SCTP, DCEP) over the path the ICE agent
/// selected. Without SDP the DTLS roles follow the ICE roles as JSEP's would (the offerer is ICE controlling and, with
/// <c>a=setup:actpass</c> answered by <c>active</c>, the DTLS server; RFC 8842 §5.3). Each side opens a channel named
/// after itself, sends its messages and checks their echoes, echoes the peer's channel, and ends once its own echoes
/// are all back and the peer closed its channel (so neither leaves while the other still needs it).
/// </summary>
internal static class IceDataChannel
{
    public static async Task<bool> RunAsync(IDatagramSocket path, IceRole role, DtlsCertificate certificate, Task<string> remoteFingerprint, int count, int size, TimeSpan timeout, ILoggerFactory loggers, CancellationToken ct)
    {
        var log = loggers.CreateLogger("connect");
        if (timeout <= TimeSpan.Zero) throw new RuntimeFailureException("connect: no time left for the data channel (--timeout)");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var setup = Stopwatch.StartNew();
        string fingerprint;
        try
        {
            fingerprint = await remoteFingerprint.WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new RuntimeFailureException("connect: the peer sent no DTLS fingerprint (is it running with --datachannel?)");
        }

        await using var pc = new RtcPeerConnection(path, TimeProvider.System, new RtcConfiguration { Certificate = certificate, ConnectTimeout = timeout }, loggers);
        RtcDataChannel mine;
        try
        {
            pc.ConnectOverPath(fingerprint, dtlsClient: role == IceRole.Controlled);
            await pc.Connected.WaitAsync(deadline.Token);
            mine = await pc.CreateDataChannelAsync(role == IceRole.Controlling ? "controlling" : "controlled", cancellationToken: deadline.Token);
        }
        catch (SdpException ex)
        {
            throw new RuntimeFailureException($"connect: bad fingerprint from the peer: {ex.Message}", ex);
        }
        catch (InvalidOperationException ex)
        {
            throw new RuntimeFailureException($"connect: {ex.Message}", ex);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new RuntimeFailureException("connect: the data channel did not open in time", ex);
        }

        var setupMs = setup.Elapsed.TotalMilliseconds;
        var echo = EchoPeerAsync(pc, log, deadline.Token);
        var all = await RtcCommands.SendAndCheckEchoesAsync(mine, count, size, timeout - setup.Elapsed, setupMs, deadline.Token);
        mine.Close();
        var peerDone = await echo;
        if (!peerDone) await Console.Error.WriteLineAsync("peerway: connect: the peer's channel did not finish in time");
        return all && peerDone;
    }

    /// <summary>Echoes the peer's channel until the peer closes it; false if it never opened or the deadline came first.</summary>
    private static async Task<bool> EchoPeerAsync(RtcPeerConnection pc, ILogger log, CancellationToken ct)
    {
        try
        {
            var theirs = await pc.AcceptDataChannelAsync(ct);
            if (theirs is null) return false;
            await RtcCommands.EchoAsync(theirs, log, ct);
            await theirs.Closed.WaitAsync(ct);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
