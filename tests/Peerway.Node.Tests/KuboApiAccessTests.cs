using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using Peerway.Node.Daemon;

namespace Peerway.Node.Tests;

/// <summary>
/// Issue 18 §8 for the kubo-style API: a client off this host (192.0.2.7, TEST-NET-1, 2001:db8::/32: the address is
/// only written into the request, no packet is sent) is refused unless api-authorizations are set, and then every
/// client must present one (kubo's API.Authorizations: basic or bearer) and stay under its allowed paths.
/// </summary>
public sealed class KuboApiAccessTests
{
    private static readonly Dictionary<string, ApiAuthorization> Auths = new()
    {
        ["alice"] = new ApiAuthorization { AuthSecret = "basic:alice:s3cret" },
        ["bob"] = new ApiAuthorization { AuthSecret = "basic:" + Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:pw")), AllowedPaths = ["/api/v0/version"] },
        ["ci"] = new ApiAuthorization { AuthSecret = "bearer:tok-123", AllowedPaths = ["/api/v0/cat", "/api/v0/add"] },
    };

    [Theory]
    [InlineData("192.0.2.7", false, null, "/api/v0/version", 403)]
    [InlineData("2001:db8::7", false, null, "/api/v0/add", 403)]
    [InlineData("127.0.0.1", false, null, "/api/v0/version", 200)]
    [InlineData("::1", false, null, "/api/v0/cat", 200)]
    [InlineData("192.0.2.7", true, null, "/api/v0/version", 401)]
    [InlineData("127.0.0.1", true, null, "/api/v0/version", 401)]
    [InlineData("192.0.2.7", true, "Basic alice:wrong", "/api/v0/version", 401)]
    [InlineData("192.0.2.7", true, "Basic alice:s3cret", "/api/v0/pin/add", 200)]
    [InlineData("192.0.2.7", true, "Basic bob:pw", "/api/v0/version", 200)]
    [InlineData("192.0.2.7", true, "Basic bob:pw", "/api/v0/versionx", 403)]
    [InlineData("192.0.2.7", true, "Basic bob:pw", "/api/v0/add", 403)]
    [InlineData("192.0.2.7", true, "Bearer tok-123", "/api/v0/cat", 200)]
    [InlineData("192.0.2.7", true, "Bearer tok-12", "/api/v0/cat", 401)]
    [InlineData("192.0.2.7", true, "Bearer tok-123", "/api/v0/pin/rm", 403)]
    [InlineData("192.0.2.7", true, "Basic tok-123", "/api/v0/cat", 401)]
    public async Task Clients_need_an_authorization_off_this_host_and_everywhere_once_one_is_set(string remote, bool auth, string? header, string path, int status)
    {
        var access = new KuboApiAccess(auth ? Auths : new Dictionary<string, ApiAuthorization>());
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(remote);
        context.Request.Method = "POST";
        context.Request.Path = path;
        if (header is not null)
        {
            var (scheme, value) = (header.Split(' ')[0], header.Split(' ')[1]);
            context.Request.Headers.Authorization = scheme == "Basic" ? "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(value)) : header;
        }

        context.Response.Body = new MemoryStream();
        var admitted = await access.AdmitAsync(context);
        Assert.Equal(status == 200, admitted);
        Assert.Equal(status, context.Response.StatusCode);
    }

    [Theory]
    [InlineData("")]
    [InlineData("basic:")]
    [InlineData("basic:bm9jb2xvbg==")] // base64 of "nocolon"
    [InlineData("bearer:")]
    [InlineData("token:x")]
    public void A_bad_secret_is_a_config_error(string secret)
    {
        var config = new NodeConfig { ApiAuthorizations = new Dictionary<string, ApiAuthorization> { ["x"] = new() { AuthSecret = secret } } };
        Assert.Throws<ArgumentException>(config.Validate);
    }
}
