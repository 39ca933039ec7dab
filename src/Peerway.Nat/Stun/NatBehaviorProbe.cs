using System.Net;
using Peerway.Net;

namespace Peerway.Nat.Stun;

/// <summary>RFC 4787 / RFC 5780 behaviour of a NAT's mapping or filtering.</summary>
public enum NatBehavior
{
    /// <summary>Could not be determined (no response, or the server lacks RFC 5780 support).</summary>
    Unknown,

    /// <summary>The mapped address equals the local address: no NAT on the path.</summary>
    NoNat,

    /// <summary>RFC 4787 §4.1/§5: the NAT's behaviour does not depend on the remote address or port.</summary>
    EndpointIndependent,

    /// <summary>The NAT's behaviour depends on the remote IP address but not its port.</summary>
    AddressDependent,

    /// <summary>The NAT's behaviour depends on the remote IP address and port (the most restrictive).</summary>
    AddressAndPortDependent,
}

/// <summary>What <see cref="NatBehaviorProbe"/> found.</summary>
public sealed record NatBehaviorReport(
    IPEndPoint LocalEndPoint,
    IPEndPoint MappedEndPoint,
    IPEndPoint? OtherAddress,
    NatBehavior Mapping,
    NatBehavior Filtering)
{
    /// <summary>A lower-case description of <paramref name="behavior"/> for logs and the CLI.</summary>
    public static string Describe(NatBehavior behavior) => behavior switch
    {
        NatBehavior.NoNat => "no NAT (endpoint-independent)",
        NatBehavior.EndpointIndependent => "endpoint-independent",
        NatBehavior.AddressDependent => "address-dependent",
        NatBehavior.AddressAndPortDependent => "address-and-port-dependent",
        _ => "unknown",
    };
}

/// <summary>
/// RFC 5780 §4.3 (mapping) and §4.4 (filtering) behaviour discovery against a server with an alternate address.
/// Each test family runs on its own socket: the mapping tests send to the alternate address, which would open an
/// address-dependent filter and spoil the filtering tests if they shared a mapping.
/// </summary>
public static class NatBehaviorProbe
{
    // RFC 5780 §7.2: CHANGE-REQUEST flags.
    private const uint ChangeIpAndPort = 0x06;
    private const uint ChangePortOnly = 0x02;

    /// <summary>
    /// Runs the RFC 5780 mapping tests on one socket and the filtering tests on another, both from <paramref name="newSocket"/>
    /// (each is disposed at the end). Without OTHER-ADDRESS in the first response, mapping and filtering are
    /// <see cref="NatBehavior.Unknown"/> (unless there is no NAT).
    /// </summary>
    /// <param name="newSocket">Creates an unconnected socket for each test family.</param>
    /// <param name="server">The STUN server's primary address.</param>
    /// <param name="time">Clock for the retransmission timers.</param>
    /// <param name="options">Retransmission parameters of each transaction.</param>
    /// <param name="cancellationToken">Cancels the probe.</param>
    /// <exception cref="TimeoutException">The server did not answer a plain Binding request.</exception>
    /// <exception cref="InvalidOperationException">The server answered with an error or without a mapped address.</exception>
    public static async Task<NatBehaviorReport> RunAsync(
        Func<IDatagramSocket> newSocket, IPEndPoint server, TimeProvider time, StunClientOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(newSocket);
        ArgumentNullException.ThrowIfNull(server);

        IPEndPoint mapped1, local;
        IPEndPoint? other;
        NatBehavior mapping;
        using (var client = new StunClient(newSocket(), time, options))
        {
            // Test I: plain Binding to the primary address.
            var r1 = await client.BindingAsync(server, null, cancellationToken).ConfigureAwait(false);
            mapped1 = RequireMapped(r1);
            local = client.LocalEndPoint;
            r1.TryGetAddress(StunAttributeType.OtherAddress, out other);
            if (IsLocal(mapped1, local))
            {
                mapping = NatBehavior.NoNat;
            }
            else if (other is null)
            {
                mapping = NatBehavior.Unknown;
            }
            else
            {
                // Test II: to the alternate IP, primary port. Same mapping → endpoint-independent.
                var mapped2 = RequireMapped(await client.BindingAsync(new IPEndPoint(other.Address, server.Port), null, cancellationToken).ConfigureAwait(false));
                if (mapped2.Equals(mapped1))
                {
                    mapping = NatBehavior.EndpointIndependent;
                }
                else
                {
                    // Test III: to the alternate IP and port. Same as test II → address-dependent.
                    var mapped3 = RequireMapped(await client.BindingAsync(other, null, cancellationToken).ConfigureAwait(false));
                    mapping = mapped3.Equals(mapped2) ? NatBehavior.AddressDependent : NatBehavior.AddressAndPortDependent;
                }
            }
        }

        var filtering = NatBehavior.Unknown;
        if (other is not null)
        {
            using var client = new StunClient(newSocket(), time, options);
            var r1 = await client.BindingAsync(server, null, cancellationToken).ConfigureAwait(false);
            RequireMapped(r1);
            // Test II: ask for the response from the alternate IP and port.
            if (await AnsweredAsync(client, server, ChangeIpAndPort, cancellationToken).ConfigureAwait(false))
            {
                filtering = mapping == NatBehavior.NoNat ? NatBehavior.NoNat : NatBehavior.EndpointIndependent;
            }
            else
            {
                // Test III: ask for the response from the primary IP, alternate port.
                filtering = await AnsweredAsync(client, server, ChangePortOnly, cancellationToken).ConfigureAwait(false)
                    ? NatBehavior.AddressDependent
                    : NatBehavior.AddressAndPortDependent;
            }
        }

        return new NatBehaviorReport(local, mapped1, other, mapping, filtering);
    }

    private static async Task<bool> AnsweredAsync(StunClient client, IPEndPoint server, uint flags, CancellationToken cancellationToken)
    {
        try
        {
            var response = await client.BindingAsync(server, flags, cancellationToken).ConfigureAwait(false);
            return response.Class == StunClass.SuccessResponse;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private static bool IsLocal(IPEndPoint mapped, IPEndPoint local) =>
        mapped.Equals(local);

    private static IPEndPoint RequireMapped(StunMessage response)
    {
        if (response.Class != StunClass.SuccessResponse)
        {
            response.TryGetErrorCode(out var code, out var reason);
            throw new InvalidOperationException($"The STUN server answered {code} {reason}.");
        }

        if (response.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped) ||
            response.TryGetAddress(StunAttributeType.MappedAddress, out mapped))
        {
            return mapped!;
        }

        throw new InvalidOperationException("The STUN response has no mapped address.");
    }
}
