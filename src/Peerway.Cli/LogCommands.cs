using System.CommandLine;
using System.Globalization;
using Peerway.Dht;
using Peerway.Dht.Log;

namespace Peerway.Cli;

/// <summary>
/// <c>peerway log create|append|verify</c> (and <c>serve|clone</c>, in <see cref="LogReplicaCommands"/>): a tamper-evident append-only log in a directory (<see cref="LogDirectory"/>),
/// each length signed as a BEP 44 head. Results on stdout, one line; errors one line on stderr (exit 2 usage, 1 failure).
/// </summary>
internal static class LogCommands
{
    public static Command Create()
    {
        var log = new Command("log", "A tamper-evident append-only log: entries in a Merkle tree (RFC 9162), each length signed as a BEP 44 head.");
        log.Subcommands.Add(CreateCreate());
        log.Subcommands.Add(CreateAppend());
        log.Subcommands.Add(CreateVerify());
        log.Subcommands.Add(LogReplicaCommands.CreateServe());
        log.Subcommands.Add(LogReplicaCommands.CreateClone());
        return log;
    }

    private static Command CreateCreate()
    {
        var name = new Argument<string>("name") { Description = $"The log's name (at most {LogHead.MaxNameLength} bytes; the BEP 44 salt of its heads)." };
        var output = new Option<string>("--output", "-o") { Description = "Directory to create (must not exist or be empty).", Required = true };
        var command = new Command("create", "Create a log owned by a new ed25519 key; prints '<public key>/<name>'.") { name, output };
        command.SetAction(async (parse, ct) =>
        {
            var logName = parse.GetValue(name)!;
            if (logName.Length == 0 || System.Text.Encoding.UTF8.GetByteCount(logName) > LogHead.MaxNameLength)
            {
                throw new UsageException($"a log name is 1 to {LogHead.MaxNameLength} bytes");
            }

            var dir = parse.GetValue(output)!;
            if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any()) throw new UsageException($"'{dir}' is not empty");
            using var key = DhtSigningKey.Generate();
            try
            {
                LogDirectory.Create(dir, logName, key);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new RuntimeFailureException($"cannot create '{dir}': {ex.Message}");
            }

            await parse.InvocationConfiguration.Output.WriteLineAsync($"{Convert.ToHexStringLower(key.PublicKey)}/{logName}");
            return CliRunner.Ok;
        });
        return command;
    }

    private static Command CreateAppend()
    {
        var dir = new Argument<string>("dir") { Description = "The log's directory (with its owner key)." };
        var file = new Argument<string>("file") { Description = "The entry: a file, or - for stdin." };
        var command = new Command("append", "Append an entry and sign the new head; prints 'length <n> root <64 hex>'.") { dir, file };
        command.SetAction(async (parse, ct) =>
        {
            var log = Open(parse.GetValue(dir)!);
            var path = parse.GetValue(file)!;
            byte[] entry;
            try
            {
                if (path == "-")
                {
                    using var buffer = new MemoryStream();
                    await using var stdin = Console.OpenStandardInput();
                    await stdin.CopyToAsync(buffer, ct);
                    entry = buffer.ToArray();
                }
                else
                {
                    entry = await File.ReadAllBytesAsync(path, ct);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"cannot read '{path}': {ex.Message}");
            }

            LogHead head;
            try
            {
                head = log.Append(entry);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
            {
                // Not the owner's copy, or an entry over LogDirectory.MaxEntryLength.
                throw new UsageException(ex.Message);
            }

            await parse.InvocationConfiguration.Output.WriteLineAsync(
                string.Create(CultureInfo.InvariantCulture, $"length {head.Length} root {Convert.ToHexStringLower(head.Root)}"));
            return CliRunner.Ok;
        });
        return command;
    }

    private static Command CreateVerify()
    {
        var dir = new Argument<string>("dir") { Description = "The log's directory." };
        var command = new Command("verify", "Check every entry against the signed heads; prints 'ok <n> entries root <64 hex>', exit 1 on tampering or a fork.") { dir };
        command.SetAction(async (parse, ct) =>
        {
            var result = Open(parse.GetValue(dir)!).Verify();
            if (!result.Ok) throw new RuntimeFailureException(result.Problem!);
            var root = result.Head is { } head ? Convert.ToHexStringLower(head.Root) : Convert.ToHexStringLower(MerkleTree.Root([], 0));
            await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"ok {result.Length} entries root {root}"));
            return CliRunner.Ok;
        });
        return command;
    }

    internal static LogDirectory Open(string dir)
    {
        try
        {
            return LogDirectory.Open(dir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or InvalidDataException)
        {
            throw new UsageException($"'{dir}' is not a log directory: {ex.Message}");
        }
    }
}
