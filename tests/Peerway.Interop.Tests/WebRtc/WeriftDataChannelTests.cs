using System.Globalization;
using System.Text.Json;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.WebRtc;

/// <summary>werift (npm, a pure TypeScript WebRTC stack) against Peerway in both roles, over loopback.</summary>
public sealed class WeriftDataChannelTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    private static string PeerScript => Path.Combine(RequiredTool.RequireNpmPeers(), "werift-peer.mjs");

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Werift_offers_to_rtc_listen_and_every_message_is_echoed()
    {
        var node = RequiredTool.Require("node", "apt-get install nodejs");
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        await using var listener = PeerwayCli.Start("rtc", "listen", "--http", "127.0.0.1:" + port, "--echo");
        await listener.WaitForStdoutAsync(l => l.StartsWith("rtc: listening on ", StringComparison.Ordinal), Timeout);
        await using var werift = ExternalProcess.Start(node, [PeerScript, "offer", $"http://127.0.0.1:{port}/rtc", "1,16384,65536,262144,1000,5"], Timeout);
        var code = await werift.WaitForExitAsync(Timeout);
        Assert.True(code == 0, $"werift {code}: {werift.Stdout}\n{werift.Stderr}\nlistener: {listener.Stdout}\n{listener.Stderr}");
        Assert.Contains("echoed 6 of 6", werift.StdoutLines);
        await listener.WaitForStdoutAsync(l => l.StartsWith("channel open werift id ", StringComparison.Ordinal) && l.EndsWith(" ordered", StringComparison.Ordinal), Timeout);
        await listener.WaitForStdoutAsync(l => l == "channel closed werift", Timeout);
        Assert.Contains("closed werift", werift.StdoutLines);
    }

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
}
