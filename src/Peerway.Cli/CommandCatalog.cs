using System.CommandLine;

namespace Peerway.Cli;

/// <summary>Every top-level command. Each area keeps its commands in its own file.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return DemoCommand.Create();
        foreach (var command in ContentCommands.Create()) { yield return command; }
        foreach (var c in NatCommands.All()) yield return c;
        yield return DhtCommands.Create();
        yield return LogCommands.Create();
        yield return SimulateCommand.Create();
        foreach (var c in TorrentCommands.All()) yield return c;
        yield return RtcCommands.Create();
        yield return IpfsCommands.Create();
        yield return NodeCommand.Create();
    }
}
