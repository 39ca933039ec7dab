using System.Text.Json;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.WebRtc;

/// <summary>
/// werift (npm, a pure TypeScript WebRTC stack) against Peerway over loopback, as answerer to a Peerway offer and as
/// offerer to `peerway rtc listen --echo`. werift fails its DTLS transport when no SRTP profile was negotiated (even for
/// data channels) and then never starts SCTP, so both depend on Peerway negotiating use_srtp (RFC 5764) in either role.
/// </summary>
public sealed class WeriftDataChannelTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    private static string PeerScript => Path.Combine(RequiredTool.RequireNpmPeers(), "werift-peer.mjs");

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Werift_answers_a_Peerway_offer_and_echoes_one_MiB()
    {
        var node = RequiredTool.Require("node", "apt-get install nodejs");
        await using var werift = ExternalProcess.Start(node, [PeerScript, "answer"], Timeout, redirectStdin: true);
        await using var pc = new Peerway.WebRtc.RtcPeerConnection(new Peerway.Net.UdpDatagramSocket(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0)), TimeProvider.System, new Peerway.WebRtc.RtcConfiguration());
        await werift.WriteLineAsync(JsonSerializer.Serialize(await pc.CreateOfferAsync()));
        var answerLine = await werift.WaitForStdoutAsync(l => l.StartsWith("answer ", StringComparison.Ordinal), Timeout);
        pc.SetAnswer(JsonSerializer.Deserialize<string>(answerLine["answer ".Length..])!);
        await pc.Connected.WaitAsync(Timeout);

        var channel = await pc.CreateDataChannelAsync("bulk");
        var data = System.Security.Cryptography.RandomNumberGenerator.GetBytes(1024 * 1024);
        var echoed = Task.Run(async () =>
        {
            using var received = new MemoryStream();
            while (received.Length < data.Length) received.Write((await channel.ReceiveAsync())!.Value.Data.Span);
            return received.ToArray();
        });
        for (var i = 0; i < data.Length; i += 65536) await channel.SendAsync(data.AsMemory(i, 65536));
        Assert.Equal(data, await echoed.WaitAsync(Timeout));
        await werift.WaitForStdoutAsync(l => l == "open bulk ordered", Timeout);
        channel.Close();
        await channel.Closed.WaitAsync(Timeout);
        await werift.WaitForStdoutAsync(l => l == "closed bulk", Timeout);
        werift.CloseStdin();
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Werift_offers_and_every_message_is_echoed()
    {
        var node = RequiredTool.Require("node", "apt-get install nodejs");
        var (listener, url) = await RtcCliTests.StartListenerAsync();
        await using var _ = listener;

        // Sizes around one SCTP chunk and up to werift's a=max-message-size (64 KiB; it refuses to take more), then
        // 1 MiB as 16 messages of 64 KiB. Each message carries its index, so werift checks every echo byte for byte.
        int[] sizes = [4, 100, 1200, 1201, 16384, 65535, .. Enumerable.Repeat(65536, 16)];
        await using var werift = ExternalProcess.Start(node, [PeerScript, "offer", url, string.Join(',', sizes)], Timeout);
        var exit = await werift.WaitForExitAsync(Timeout);
        var report = $"werift: {werift.Stdout}\n{werift.Stderr}\nlistener: {listener.Stdout}\n{listener.Stderr}";
        Assert.True(exit == 0, $"exit {exit}\n{report}");
        Assert.Contains($"echoed {sizes.Length} of {sizes.Length}", werift.StdoutLines);
        Assert.Contains("closed werift", werift.StdoutLines);

        // werift is the DTLS server here (it offered actpass, we answered active), so its channel has an odd id.
        await listener.WaitForStdoutAsync(l => l == "channel open werift id 1 ordered", Timeout);
        await listener.WaitForStdoutAsync(l => l == "channel closed werift", Timeout);
    }
}
