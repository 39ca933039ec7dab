using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Peerway.Node;

/// <summary>Logger factories for the node and CLI: everything on stderr, so stdout stays a machine-readable contract.</summary>
public static class NodeLogging
{
    /// <summary>Warnings and errors on stderr; debug and up when <paramref name="verbose"/>.</summary>
    public static ILoggerFactory CreateStderrFactory(bool verbose) =>
        LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning);
            builder.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
                o.ColorBehavior = LoggerColorBehavior.Disabled;
            });
            builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        });
}
