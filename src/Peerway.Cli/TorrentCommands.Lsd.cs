using System.CommandLine;

namespace Peerway.Cli;

/// <summary>--lsd: BEP 14 Local Service Discovery on share and get.</summary>
internal static partial class TorrentCommands
{
    /// <summary>The environment variable that changes --lsd's default (the test suite sets it to off: nothing multicast off the machine).</summary>
    internal const string LsdDefaultVariable = "PEERWAY_LSD";

    private static Option<string> LsdOption() => new("--lsd")
    {
        Description = $"BEP 14 Local Service Discovery: on (multicast announces on 239.192.152.143:6771 and [ff15::efc0:988f]:6771 find peers on the LAN) or off. Default: on (as libtorrent), or ${LsdDefaultVariable}.",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(LsdDefaultVariable) is { Length: > 0 } v ? v : "on",
    };

    private static bool CheckLsd(string? value) => value switch
    {
        "on" => true,
        "off" => false,
        _ => throw new UsageException($"--lsd must be on or off, not '{value}'"),
    };
}
