using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Peerway.Node;

namespace Peerway.Cli;

/// <summary>
/// What every command that binds shares: the <c>--port</c> and <c>--bind</c> options (one wording for a bad value) and
/// the one-line runtime failure when the address cannot be bound (a port in use, an address not on this host).
/// </summary>
internal static class Listening
{
    /// <summary>A port option parsed and checked by the parser itself, so every command words a bad port the same way.</summary>
    public static Option<int> PortOption(string name, string description, int defaultPort, bool allowZero, params string[] aliases)
    {
        var option = new Option<int>(name, aliases)
        {
            Description = description,
            DefaultValueFactory = _ => defaultPort,
        };
        option.CustomParser = result =>
        {
            if (result.Tokens.Count == 0) return defaultPort;
            var text = result.Tokens[^1].Value;
            if (EndPointParser.TryParsePort(text, allowZero, out var port)) return port;
            result.AddError(BadPort(name, text, allowZero));
            return defaultPort;
        };
        return option;
    }

    /// <summary>The one wording of a bad port, on every command.</summary>
    public static string BadPort(string option, string text, bool allowZero) =>
        $"{option} '{text}' is not a valid port ({(allowZero ? 0 : 1)}-65535)";

    /// <summary>--bind: an IP address literal to listen on.</summary>
    public static Option<string> BindOption(string description, string defaultAddress) => new("--bind")
    {
        Description = description,
        DefaultValueFactory = _ => defaultAddress,
    };

    /// <summary>Parses an IP address literal given to <paramref name="option"/>; anything else is a usage error.</summary>
    public static IPAddress ParseAddress(string? text, string option = "--bind") =>
        EndPointParser.TryParseAddress(text, out var address) ? address! : throw new UsageException($"{option} '{text}' is not an IP address");

    /// <summary>Runs <paramref name="start"/>, which binds <paramref name="address"/>:<paramref name="port"/>; failing to bind is one line, exit 1.</summary>
    public static T Bind<T>(IPAddress address, int port, Func<T> start) =>
        Bind(EndPointParser.Format(new IPEndPoint(address, port)), start);

    /// <summary>The same, for an address given as text (a host name or literal and a port: <c>localhost:8080</c>).</summary>
    public static T Bind<T>(string where, Func<T> start)
    {
        ArgumentNullException.ThrowIfNull(start);
        try
        {
            return start();
        }
        catch (SocketException ex)
        {
            throw CannotBind(where, ex);
        }
        catch (HttpListenerException ex)
        {
            throw CannotBind(where, ex);
        }
    }

    /// <summary>The asynchronous form of <see cref="Bind{T}(IPAddress, int, Func{T})"/>.</summary>
    public static async Task BindAsync(IPAddress address, int port, Func<Task> start)
    {
        ArgumentNullException.ThrowIfNull(start);
        try
        {
            await start();
        }
        catch (SocketException ex)
        {
            throw CannotBind(EndPointParser.Format(new IPEndPoint(address, port)), ex);
        }
        catch (IOException ex) when (ex.InnerException is SocketException inner)
        {
            // A stream transport reports a taken endpoint as an IOException around the socket's error.
            throw CannotBind(EndPointParser.Format(new IPEndPoint(address, port)), inner);
        }
    }

    /// <summary><c>cannot bind 127.0.0.1:6881: Address already in use</c> (exit 1).</summary>
    public static RuntimeFailureException CannotBind(string where, Exception cause) => new($"cannot bind {where}: {cause.Message}", cause);
}
