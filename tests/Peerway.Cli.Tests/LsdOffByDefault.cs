using System.Runtime.CompilerServices;

namespace Peerway.Cli.Tests;

/// <summary>
/// The tests' Peerway processes (children inherit the variable) and in-process CLI runs announce nothing by BEP 14
/// multicast unless a test asks for it with --lsd on: a multicast would leave the machine on its default interface.
/// </summary>
internal static class LsdOffByDefault
{
#pragma warning disable CA2255 // a test assembly: the setting must hold before any test starts a process
    [ModuleInitializer]
    internal static void Init()
    {
        if (Environment.GetEnvironmentVariable("PEERWAY_LSD") is null) Environment.SetEnvironmentVariable("PEERWAY_LSD", "off");
    }
#pragma warning restore CA2255
}
