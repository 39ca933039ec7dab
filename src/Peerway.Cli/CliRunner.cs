using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Peerway.Core.IO;

namespace Peerway.Cli;

/// <summary>A user error: printed as one line on stderr, exit code 2.</summary>
internal sealed class UsageException : Exception
{
    public UsageException(string message) : base(message)
    {
    }

    public UsageException()
    {
    }

    public UsageException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>A runtime failure (timeout, nothing found, I/O): one line on stderr, exit code 1.</summary>
internal sealed class RuntimeFailureException : Exception
{
    public RuntimeFailureException(string message) : base(message)
    {
    }

    public RuntimeFailureException()
    {
    }

    public RuntimeFailureException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

internal static class CliRunner
{
    public const int Ok = 0;
    public const int RuntimeError = 1;
    public const int UsageError = 2;

    public static async Task<int> RunAsync(RootCommand root, string[] args)
    {
        using var cts = new CancellationTokenSource();
        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; cts.Cancel(); });
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        return await RunAsync(root, args, Console.Out, Console.Error, cts.Token);
    }

    /// <summary>Runs a command line with the given output writers (tests run the CLI in-process through this).</summary>
    public static async Task<int> RunAsync(RootCommand root, string[] args, TextWriter output, TextWriter error, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(error);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            await error.WriteLineAsync($"peerway: {DescribeParseError(parse)}");
            return UsageError;
        }

        try
        {
            return await parse.InvokeAsync(
                new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = output, Error = error }, ct);
        }
        catch (UsageException ex)
        {
            await error.WriteLineAsync($"peerway: {ex.Message}");
            return UsageError;
        }
        catch (RuntimeFailureException ex)
        {
            await error.WriteLineAsync($"peerway: {ex.Message}");
            return RuntimeError;
        }
        catch (OutputConflictException ex)
        {
            // Something of the user's is where we would write: nothing was touched, and it is theirs to move.
            await error.WriteLineAsync($"peerway: {ex.Message}{(ex.Conflict == OutputConflict.DoesNotFit ? "; --overwrite replaces it" : "")}");
            return UsageError;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await error.WriteLineAsync("peerway: interrupted");
            return RuntimeError;
        }
        catch (IOException ex)
        {
            await error.WriteLineAsync($"peerway: {ex.Message}");
            return RuntimeError;
        }
        catch (UnauthorizedAccessException ex)
        {
            await error.WriteLineAsync($"peerway: {ex.Message}");
            return RuntimeError;
        }
    }

    /// <summary>
    /// One line a user understands for a command line the parser refused: an unknown or missing command names the
    /// command and points to --help; a value that is not a number says so in words (not "System.Int32").
    /// </summary>
    internal static string DescribeParseError(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var command = parse.CommandResult.Command;
        if (command.Subcommands.Count > 0 && command.Action is null)
        {
            var path = string.Join(' ', CommandPath(parse.CommandResult));
            var unknown = parse.UnmatchedTokens.FirstOrDefault(t => !t.StartsWith('-'));
            return unknown is null
                ? $"missing command; run '{path} --help' to list them"
                : $"unknown command '{unknown}'; run '{path} --help' to list the commands";
        }

        foreach (var e in parse.Errors)
        {
            var option = e.SymbolResult switch
            {
                OptionResult o => o,
                ArgumentResult { Parent: OptionResult o } => o,
                _ => null,
            };
            if (option is null || option.Tokens.Count == 0) continue;
            var text = option.Tokens[^1].Value;
            var type = Nullable.GetUnderlyingType(option.Option.ValueType) ?? option.Option.ValueType;
            // The parser's own conversion error names the CLR type; an option's own check (ports) is worded already.
            if (!e.Message.Contains(type.FullName!, StringComparison.Ordinal)) continue;
            if (type == typeof(int) || type == typeof(long))
            {
                if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)) return $"{option.Option.Name} '{text}' is not a whole number";
            }
            else if (type == typeof(double) && !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            {
                return $"{option.Option.Name} '{text}' is not a number";
            }
        }

        return parse.Errors[0].Message;
    }

    private static List<string> CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult c; r = c.Parent)
        {
            names.Insert(0, c.Parent is null ? "peerway" : c.Command.Name);
        }

        return names;
    }
}
