using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Peerway.Node;

/// <summary>Starting a Kestrel app that listens on one address.</summary>
internal static class KestrelStart
{
    /// <summary>
    /// Starts <paramref name="app"/>; an address in use surfaces as an <see cref="IOException"/> with the socket's
    /// message. Returns the port bound (the one the system picked for port 0), or null when Kestrel does not say.
    /// </summary>
    public static async Task<int?> StartAsync(WebApplication app, CancellationToken ct)
    {
        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch (IOException ex) when (ex.InnerException is AddressInUseException inUse)
        {
            throw new IOException(inUse.Message, ex);
        }

        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return bound is not null && BindingAddress.Parse(bound) is { Port: > 0 } address ? address.Port : null;
    }
}
