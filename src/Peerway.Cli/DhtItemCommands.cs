using System.CommandLine;
using System.Globalization;
using System.Text;
using Peerway.Core;
using Peerway.Core.Bencoding;
using Peerway.Dht;

namespace Peerway.Cli;

/// <summary>
/// <c>peerway dht keygen|pubkey|put|get</c>: BEP 44 items. A key file holds a 32-byte ed25519 seed as 64 hex digits on
/// one line. A value given on the command line is a UTF-8 string stored as a bencoded byte string; a got value that is a
/// byte string is printed as UTF-8, any other bencoded value as its bencode.
/// </summary>
internal static class DhtItemCommands
{
    public static IEnumerable<Command> Create() => [CreateKeygen(), CreatePubkey(), CreatePut(), CreateGet()];

    private static Command CreateKeygen()
    {
        var output = new Option<string>("--output", "-o") { Description = "Key file to create (refused if it exists).", Required = true };
        var command = new Command("keygen", "Write a new ed25519 key (BEP 44) to a file; prints its public key (64 hex digits).") { output };
        command.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(output)!;
            using var key = DhtSigningKey.Generate();
            var seed = key.ExportSeed();
            try
            {
                // Created, never overwritten; readable by the owner only (it is a private key).
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                await using var file = new FileStream(path, options);
                await file.WriteAsync(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(seed) + "\n"), ct);
            }
            catch (IOException) when (File.Exists(path))
            {
                throw new UsageException($"key file '{path}' already exists");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new RuntimeFailureException($"cannot write key file '{path}': {ex.Message}");
            }
            finally
            {
                Array.Clear(seed);
            }

            await parse.InvocationConfiguration.Output.WriteLineAsync(Convert.ToHexStringLower(key.PublicKey));
            return CliRunner.Ok;
        });
        return command;
    }

    private static Command CreatePubkey()
    {
        var keyFile = new Argument<string>("keyfile") { Description = "Key file written by 'dht keygen'." };
        var command = new Command("pubkey", "Print the public key (64 hex digits) of a key file.") { keyFile };
        command.SetAction(async (parse, ct) =>
        {
            using var key = await ReadKeyAsync(parse.GetValue(keyFile)!, ct);
            await parse.InvocationConfiguration.Output.WriteLineAsync(Convert.ToHexStringLower(key.PublicKey));
            return CliRunner.Ok;
        });
        return command;
    }

    private static Command CreatePut()
    {
        var value = new Argument<string>("value") { Description = $"The value: a UTF-8 string, stored as a bencoded byte string (at most {Bep44.MaxValueLength} bytes bencoded)." };
        var keyFile = new Option<string>("--key") { Description = "Key file: store a mutable item signed with it (else an immutable one)." };
        var salt = new Option<string>("--salt") { Description = $"Salt of a mutable item (UTF-8, at most {Bep44.MaxSaltLength} bytes)." };
        var seq = new Option<string>("--seq") { Description = "Sequence number of a mutable item (default: one above the highest found, 1 if none)." };
        var common = new DhtCommonOptions(withBootstrap: true);
        var command = new Command("put", "Store an item (BEP 44); prints '<target> stored on N nodes' ('<target> seq <N> stored on N nodes' when mutable).")
        {
            value, keyFile, salt, seq,
        };
        common.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var bencoded = EncodeValue(parse.GetValue(value)!);
            var saltBytes = ParseSalt(parse.GetValue(salt));
            var keyPath = parse.GetValue(keyFile);
            if (keyPath is null && (saltBytes.Length > 0 || parse.GetValue(seq) is not null)) throw new UsageException("--salt and --seq need --key (they belong to mutable items)");
            long? sequence = parse.GetValue(seq) is { } seqText
                ? long.TryParse(seqText, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : throw new UsageException($"--seq '{seqText}' is not a non-negative integer")
                : null;
            using var key = keyPath is null ? null : await ReadKeyAsync(keyPath, ct);
            var settings = common.Read(parse);
            var routers = await DhtCli.ResolveBootstrapAsync(settings, ct);
            return await DhtCli.RunClientAsync(settings, routers, async (host, deadline) =>
            {
                await DhtCli.BootstrapOrFailAsync(host, routers, deadline);
                var result = key is null
                    ? await host.Node.PutImmutableAsync(bencoded, deadline)
                    : await host.Node.PutMutableAsync(key, saltBytes, bencoded, sequence, cas: null, deadline);
                if (result.StoredOn == 0)
                {
                    var why = result.Errors.Count > 0 ? $"refused by {result.Errors.Count} ({string.Join(", ", result.Errors.Distinct().Select(DescribeError))})" : "no node gave a write token";
                    throw new RuntimeFailureException($"no node stored {result.Item.Target}: {why}");
                }

                var output = parse.InvocationConfiguration.Output;
                if (settings.Json)
                {
                    await output.WriteLineAsync(JsonOut.Object(w =>
                    {
                        w.WriteString("target", result.Item.Target.ToString());
                        if (result.Item.IsMutable) w.WriteNumber("seq", result.Item.Sequence);
                        w.WriteNumber("storedOn", result.StoredOn);
                        w.WriteStartArray("errors");
                        foreach (var e in result.Errors) w.WriteNumberValue(e);
                        w.WriteEndArray();
                        JsonOut.WriteLookup(w, result.Lookup);
                    }));
                }
                else
                {
                    await output.WriteLineAsync(result.Item.IsMutable
                        ? string.Create(CultureInfo.InvariantCulture, $"{result.Item.Target} seq {result.Item.Sequence} stored on {result.StoredOn} nodes")
                        : string.Create(CultureInfo.InvariantCulture, $"{result.Item.Target} stored on {result.StoredOn} nodes"));
                }

                return CliRunner.Ok;
            }, ct);
        });
        return command;
    }

    private static Command CreateGet()
    {
        var target = new Argument<string>("target") { Description = "Target of an immutable item (40 hex digits).", Arity = ArgumentArity.ZeroOrOne };
        var publicKey = new Option<string>("--public-key") { Description = "Get the mutable item of this ed25519 public key (64 hex digits) instead." };
        var salt = new Option<string>("--salt") { Description = "Salt of the mutable item (UTF-8)." };
        var common = new DhtCommonOptions(withBootstrap: true);
        var command = new Command("get", "Get an item (BEP 44) and print its value; a mutable item's 'seq <N>' follows on a second line.")
        {
            target, publicKey, salt,
        };
        common.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var keyText = parse.GetValue(publicKey);
            var targetText = parse.GetValue(target);
            if ((keyText is null) == (targetText is null)) throw new UsageException("give either a target (40 hex digits) or --public-key (64 hex digits)");
            byte[]? key = null;
            if (keyText is not null && (keyText.Length != 64 || !TryHex(keyText, out key))) throw new UsageException($"--public-key '{keyText}' is not 64 hex digits");
            var saltBytes = ParseSalt(parse.GetValue(salt));
            if (key is null && saltBytes.Length > 0) throw new UsageException("--salt needs --public-key (it belongs to mutable items)");
            var id = targetText is null ? default : DhtCli.ParseId(targetText, "target");
            var settings = common.Read(parse);
            var routers = await DhtCli.ResolveBootstrapAsync(settings, ct);
            return await DhtCli.RunClientAsync(settings, routers, async (host, deadline) =>
            {
                await DhtCli.BootstrapOrFailAsync(host, routers, deadline);
                var result = key is null
                    ? await host.Node.GetImmutableAsync(id, deadline)
                    : await host.Node.GetMutableAsync(key, saltBytes, deadline);
                if (result.Item is not { } item)
                {
                    var what = key is null ? id.ToString() : Bep44.MutableTarget(key, saltBytes).ToString();
                    throw new RuntimeFailureException($"no item that verifies found for {what} ({result.Lookup.Responses} of {result.Lookup.QueriesSent} queries answered)");
                }

                var output = parse.InvocationConfiguration.Output;
                var text = DecodeValue(item.Value);
                if (settings.Json)
                {
                    await output.WriteLineAsync(JsonOut.Object(w =>
                    {
                        w.WriteString("target", item.Target.ToString());
                        w.WriteString("value", text);
                        w.WriteString("bencoded", Convert.ToHexStringLower(item.Value));
                        if (item.IsMutable)
                        {
                            w.WriteNumber("seq", item.Sequence);
                            w.WriteString("publicKey", Convert.ToHexStringLower(item.PublicKey!));
                        }

                        JsonOut.WriteLookup(w, result.Lookup);
                    }));
                }
                else
                {
                    await output.WriteLineAsync(text);
                    if (item.IsMutable) await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"seq {item.Sequence}"));
                }

                return CliRunner.Ok;
            }, ct);
        });
        return command;
    }

    internal static async Task<DhtSigningKey> ReadKeyAsync(string path, CancellationToken ct)
    {
        string text;
        try
        {
            text = (await File.ReadAllTextAsync(path, ct)).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read key file '{path}': {ex.Message}");
        }

        if (text.Length != 64 || !TryHex(text, out var seed)) throw new UsageException($"key file '{path}' does not hold a 32-byte seed as 64 hex digits");
        try
        {
            return DhtSigningKey.FromSeed(seed);
        }
        finally
        {
            Array.Clear(seed);
        }
    }

    private static bool TryHex(string text, out byte[] bytes)
    {
        bytes = new byte[text.Length / 2];
        return text.Length % 2 == 0 && Convert.FromHexString(text, bytes, out _, out var written) == System.Buffers.OperationStatus.Done && written == bytes.Length;
    }

    internal static byte[] ParseSalt(string? text)
    {
        var salt = text is null ? [] : Encoding.UTF8.GetBytes(text);
        if (salt.Length > Bep44.MaxSaltLength) throw new UsageException($"--salt is {salt.Length} bytes; BEP 44 allows at most {Bep44.MaxSaltLength}");
        return salt;
    }

    /// <summary>A UTF-8 string as a bencoded byte string, within BEP 44's 1,000 bytes.</summary>
    private static byte[] EncodeValue(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        var encoded = Encoding.ASCII.GetBytes(bytes.Length.ToString(CultureInfo.InvariantCulture) + ":").Concat(bytes).ToArray();
        if (encoded.Length > Bep44.MaxValueLength) throw new UsageException($"the value is {encoded.Length} bytes bencoded; BEP 44 allows at most {Bep44.MaxValueLength}");
        return encoded;
    }

    private static string DecodeValue(byte[] bencoded)
    {
        var reader = new BencodeReader(bencoded);
        return reader.Peek() == BencodeToken.String && reader.TryReadString(out var s) && reader.TryReadEndOfInput()
            ? Encoding.UTF8.GetString(s)
            : Encoding.UTF8.GetString(bencoded);
    }

    private static string DescribeError(int code) => code switch
    {
        205 => "205 value too big",
        206 => "206 invalid signature",
        207 => "207 salt too big",
        301 => "301 CAS mismatch",
        302 => "302 a newer sequence number is stored",
        _ => code.ToString(CultureInfo.InvariantCulture),
    };
}
