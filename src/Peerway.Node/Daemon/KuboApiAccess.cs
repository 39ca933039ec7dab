using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;

namespace Peerway.Node.Daemon;

/// <summary>
/// One client the kubo-style API lets in, as kubo's <c>API.Authorizations</c> (kubo docs/config.md): a secret
/// <c>"basic:USER:PASSWORD"</c>, <c>"basic:BASE64(USER:PASSWORD)"</c> or <c>"bearer:TOKEN"</c>, and the path prefixes
/// it may call (default <c>/api/v0</c>, everything).
/// </summary>
public sealed record ApiAuthorization
{
    [JsonPropertyName("auth-secret")]
    public string AuthSecret { get; init; } = "";

    [JsonPropertyName("allowed-paths")]
    public IReadOnlyList<string> AllowedPaths { get; init; } = ["/api/v0"];
}

/// <summary>
/// The access rule of the kubo-style API (issue 18 §8, as the Transmission RPC's): a client off this host is refused
/// unless authorizations are configured (<c>api-authorizations</c>, which only makes sense with <c>--api</c> bound
/// elsewhere); once any is configured, as in kubo, every request, loopback included, must carry one of them in its
/// <c>Authorization</c> header (HTTP basic or bearer) and call a path under that authorization's allowed paths.
/// </summary>
internal sealed class KuboApiAccess
{
    private readonly List<(byte[] Expected, bool Bearer, IReadOnlyList<string> Paths)> _secrets = [];

    public KuboApiAccess(IReadOnlyDictionary<string, ApiAuthorization> authorizations)
    {
        ArgumentNullException.ThrowIfNull(authorizations);
        foreach (var (name, a) in authorizations)
        {
            if (!TryParseSecret(a.AuthSecret, out var expected, out var bearer)) throw new ArgumentException($"api-authorizations {name}: auth-secret must be basic:USER:PASSWORD or bearer:TOKEN");
            _secrets.Add((expected, bearer, a.AllowedPaths));
        }
    }

    /// <summary>Parses a kubo AuthSecret into the credentials a request must present (basic: "user:password" bytes).</summary>
    public static bool TryParseSecret(string? secret, out byte[] expected, out bool bearer)
    {
        expected = [];
        bearer = false;
        if (secret is null) return false;
        if (secret.StartsWith("bearer:", StringComparison.Ordinal) && secret.Length > 7)
        {
            bearer = true;
            expected = Encoding.UTF8.GetBytes(secret[7..]);
            return true;
        }

        if (!secret.StartsWith("basic:", StringComparison.Ordinal) || secret.Length == 6) return false;
        var value = secret[6..];
        if (!value.Contains(':', StringComparison.Ordinal))
        {
            // kubo: "basic:" followed by base64(user:password).
            try
            {
                value = Encoding.UTF8.GetString(Convert.FromBase64String(value));
            }
            catch (FormatException)
            {
                return false;
            }

            if (!value.Contains(':', StringComparison.Ordinal)) return false;
        }

        expected = Encoding.UTF8.GetBytes(value);
        return true;
    }

    /// <summary>False, with 403 or 401 written, for a client that may not call this path.</summary>
    public async Task<bool> AdmitAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var response = context.Response;
        var remote = context.Connection.RemoteIpAddress;
        if (_secrets.Count == 0)
        {
            if (remote is null || IPAddress.IsLoopback(remote)) return true;
            response.StatusCode = StatusCodes.Status403Forbidden;
            await response.WriteAsync("403: the API answers other hosts only with api-authorizations set\n", context.RequestAborted).ConfigureAwait(false);
            return false;
        }

        var header = context.Request.Headers.Authorization.ToString();
        var path = context.Request.Path.Value ?? "/";
        var authenticated = false;
        foreach (var (expected, bearer, paths) in _secrets)
        {
            if (!Matches(header, expected, bearer)) continue;
            authenticated = true;
            if (paths.Any(p => path == p || path.StartsWith(p.TrimEnd('/') + "/", StringComparison.Ordinal))) return true;
        }

        response.StatusCode = authenticated ? StatusCodes.Status403Forbidden : StatusCodes.Status401Unauthorized;
        if (!authenticated) response.Headers.WWWAuthenticate = "Basic realm=\"kubo\"";
        await response.WriteAsync(authenticated ? "403: this authorization may not call that path\n" : "401: Unauthorized\n", context.RequestAborted).ConfigureAwait(false);
        return false;
    }

    private static bool Matches(string header, byte[] expected, bool bearer)
    {
        var scheme = bearer ? "Bearer " : "Basic ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        var value = header[scheme.Length..].Trim();
        byte[] presented;
        if (bearer)
        {
            presented = Encoding.UTF8.GetBytes(value);
        }
        else
        {
            try
            {
                presented = Convert.FromBase64String(value);
            }
            catch (FormatException)
            {
                return false;
            }
        }

        return CryptographicOperations.FixedTimeEquals(presented, expected);
    }
}
