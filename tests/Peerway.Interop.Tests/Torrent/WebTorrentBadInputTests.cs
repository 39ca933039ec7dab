using System.Text.Json;
using Peerway.Interop.Tests.Infrastructure;
using static Peerway.Interop.Tests.Torrent.WebTorrentBrowserTests;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Issue 16 item 6 with a real browser: a page speaks the WebSocket tracker protocol by hand to <c>peerway tracker</c>
/// and <c>peerway share</c> — malformed JSON, an offer for a torrent nobody has, then an RTCPeerConnection of its own
/// whose data channel, once Peerway answered and it opened, carries garbage instead of a BitTorrent handshake. Each is
/// dropped alone (Peerway logs why and closes that channel); the tracker and the seeder keep serving, so webtorrent in
/// the same page then downloads the file intact.
/// </summary>
public sealed class WebTorrentBadInputTests
{
    private const int FileSize = (1024 * 1024) + 5;

    private const string AbuseScript = """
        async ({ tracker, infoHash }) => {
          const bin = hex => String.fromCharCode(...hex.match(/../g).map(h => parseInt(h, 16)));
          const rnd = () => String.fromCharCode(...crypto.getRandomValues(new Uint8Array(20)));
          const opened = url => new Promise((resolve, reject) => { const ws = new WebSocket(url); ws.onopen = () => resolve(ws); ws.onerror = () => reject(new Error('ws error')); });
          const report = {};

          // 1. Malformed JSON: the tracker closes this socket, and only this one.
          const bad = await opened(tracker);
          const other = await opened(tracker);
          await new Promise(resolve => { bad.onclose = resolve; bad.send('{"action":"announce","info_hash":'); });
          report.badJsonClosed = true;

          // 2. An offer for a torrent nobody has: relayed to no one, answered by no one; the socket stays usable.
          const pc = new RTCPeerConnection();
          const dc = pc.createDataChannel('garbage');
          dc.binaryType = 'arraybuffer';
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(resolve => {
            if (pc.iceGatheringState === 'complete') return resolve();
            pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
          });
          const peerId = rnd();
          const announce = (hash, offerId) => other.send(JSON.stringify({ action: 'announce', info_hash: hash, peer_id: peerId, numwant: 1,
            uploaded: 0, downloaded: 0, left: 1, event: 'started', offers: [{ offer_id: offerId, offer: { type: 'offer', sdp: pc.localDescription.sdp } }] }));
          const answered = new Promise(resolve => other.onmessage = e => { const m = JSON.parse(e.data); if (m.answer) resolve(m); });
          announce(rnd(), rnd());

          // 3. The same offer for the real torrent: peerway share answers through the tracker; the channel opens and
          //    carries garbage where the BitTorrent handshake belongs; Peerway closes it.
          announce(bin(infoHash), rnd());
          const m = await answered;
          report.answerFor = [...m.info_hash].map(c => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
          await pc.setRemoteDescription(m.answer);
          if (dc.readyState !== 'open') await new Promise(resolve => dc.onopen = resolve);
          const closed = new Promise(resolve => { dc.onclose = resolve; pc.onconnectionstatechange = () => { if (pc.connectionState === 'closed' || pc.connectionState === 'failed') resolve(); }; });
          const junk = new Uint8Array(4096).fill(0xff);
          dc.send(junk);
          await closed;
          report.garbageChannelClosed = true;
          pc.close();
          other.close();

          // 4. Everybody else is still served: webtorrent downloads the file from the same seeder through the same tracker.
          const client = new WebTorrent();
          const torrent = client.add('magnet:?xt=urn:btih:' + infoHash, { announce: [tracker] });
          await new Promise((resolve, reject) => { torrent.on('done', resolve); torrent.on('error', reject); client.on('error', reject); });
          const bytes = await torrent.files[0].arrayBuffer();
          report.sha256 = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map(b => b.toString(16).padStart(2, '0')).join('');
          client.destroy();
          return JSON.stringify(report);
        }
        """;

    [RequiresToolFact(Chromium, "node", NeedsNpmPeers = true)]
    public async Task Bad_json_unknown_torrents_and_garbage_over_a_channel_are_dropped_alone()
    {
        await using var env = new TorrentInterop("wt-bad-input");
        var (trackerProcess, tracker) = await StartTrackerAsync(env, "peerway");
        await using var _ = trackerProcess;
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var share = env.StartPeerway("share", source, "--tracker", tracker, "-v");
        var magnet = await share.FirstLineAsync(Deadline);
        var infoHash = magnet["magnet:?xt=urn:btih:".Length..][..40].ToLowerInvariant();

        var (playwright, browser, page) = await OpenPageAsync();
        using var __ = playwright;
        await using var ___ = browser;
        string json;
        try
        {
            json = await page.EvaluateAsync<string>(AbuseScript, new { tracker, infoHash }).WaitAsync(Deadline);
        }
        catch (TimeoutException)
        {
            Assert.Fail("the page did not finish; peerway share said:\n" + share.Stderr[^Math.Min(share.Stderr.Length, 6000)..]);
            throw;
        }

        using var report = JsonDocument.Parse(json);
        var r = report.RootElement;
        Assert.True(r.GetProperty("badJsonClosed").GetBoolean());
        Assert.Equal(infoHash, r.GetProperty("answerFor").GetString());
        Assert.True(r.GetProperty("garbageChannelClosed").GetBoolean());
        Assert.Equal(Convert.ToHexStringLower(sha), r.GetProperty("sha256").GetString());
        // The garbage peer was dropped with a log line saying why; the seeder is still running.
        Assert.True(share.Stderr.Contains("dropping", StringComparison.Ordinal), share.Stderr);
        Assert.False(share.HasExited, share.Stderr);
    }
}
