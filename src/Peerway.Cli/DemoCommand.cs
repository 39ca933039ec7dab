using System.CommandLine;

namespace Peerway.Cli;

/// <summary>`peerway demo`: the main job, a local swarm on loopback.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Run a local swarm on loopback and print a summary.");
        command.SetAction((_, _) => Task.FromException<int>(new RuntimeFailureException("the demo is not built yet")));
        return command;
    }
}
