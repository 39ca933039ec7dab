using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Node.Daemon;

namespace Peerway.Node.Tests;

/// <summary>
/// The rpc listener answers <c>/transmission/rpc</c> ahead of endpoint routing (issue 18 §8): the same paths as the
/// route it replaced (any case, one trailing slash), nothing else, and the listener's other routes still answer.
/// </summary>
public sealed class NodeRpcPathTests
{
    [Theory]
    [InlineData("/transmission/rpc", true)]
    [InlineData("/Transmission/RPC", true)]
    [InlineData("/transmission/rpc/", true)]
    [InlineData("/transmission/rpc//", false)]
    [InlineData("/transmission/rpcx", false)]
    [InlineData("/transmission/rp", false)]
    [InlineData("/transmission/rpc/x", false)]
    [InlineData("/transmission", false)]
    [InlineData("", false)]
    public void The_rpc_path_matches_as_the_route_did(string requested, bool matches) =>
        Assert.Equal(matches, NodeDaemon.IsPath(new PathString(requested.Length == 0 ? null : requested), NodeDaemon.TransmissionRpcPath));

    [Fact]
    public async Task The_rpc_answers_at_its_path_in_any_case_and_the_listeners_other_routes_still_answer()
    {
        var dir = Directory.CreateTempSubdirectory("pw-rpcpath-").FullName;
        await using (var node = await NodeDaemon.StartAsync(NodeConfig.Loopback(dir), NullLoggerFactory.Instance, CancellationToken.None))
        {
            using var http = new HttpClient();
            var root = node.DashboardUrl.TrimEnd('/');
            Assert.Equal(root + NodeDaemon.TransmissionRpcPath, node.RpcUrl);
            string? session = null;
            foreach (var path in new[] { "/transmission/rpc", "/TRANSMISSION/rpc/" })
            {
                // rpc-spec.md §2.3.1: the first request gets 409 and the session id, the second an answer.
                using var handshake = await http.PostAsync(root + path, new StringContent("{}"));
                Assert.Equal(HttpStatusCode.Conflict, handshake.StatusCode);
                session = handshake.Headers.GetValues(TransmissionRpc.SessionIdHeader).Single();
                using var call = new HttpRequestMessage(HttpMethod.Post, root + path) { Content = new StringContent("""{"method":"torrent-get","arguments":{"fields":["id"]}}""") };
                call.Headers.Add(TransmissionRpc.SessionIdHeader, session);
                using var answer = await http.SendAsync(call);
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                Assert.Equal("""{"arguments":{"torrents":[]},"result":"success"}""", await answer.Content.ReadAsStringAsync());
            }

            // Neighbours of the path are not the RPC: routing answers them (404), with no session-id handshake.
            using var other = await http.PostAsync(root + "/transmission/rpcx", new StringContent("{}"));
            Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
            Assert.False(other.Headers.Contains(TransmissionRpc.SessionIdHeader));
            using var page = await http.GetAsync(node.DashboardUrl);
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            using var metrics = await http.GetAsync(root + "/metrics");
            Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
            Assert.Contains("peerway_rpc_requests_total", await metrics.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Directory.Delete(dir, recursive: true);
    }
}
