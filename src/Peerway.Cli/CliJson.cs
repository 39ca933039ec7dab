using System.Text.Json;
using System.Text.Json.Serialization;
using Peerway.Simulation;

namespace Peerway.Cli;

/// <summary>
/// The JSON of every simulate command, written by generated code (no run-time reflection: the CLI is published with
/// Native AOT): camelCase names, indented, NaN and ∞ as named literals, enums as camelCase names.
/// </summary>
[JsonSourceGenerationOptions(
    WriteIndented = true,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    Converters = [typeof(CamelCaseEnumConverter<ConsistencyMode>)])]
[JsonSerializable(typeof(SimulationReport))]
[JsonSerializable(typeof(SweepResults))]
[JsonSerializable(typeof(ConsistencyReport))]
[JsonSerializable(typeof(ConsistencySweepResults))]
internal sealed partial class SimulateJson : JsonSerializerContext;

/// <summary>An enum as its camelCase name (the reflection-free form of <c>JsonStringEnumConverter(CamelCase)</c>).</summary>
internal sealed class CamelCaseEnumConverter<TEnum>() : JsonStringEnumConverter<TEnum>(JsonNamingPolicy.CamelCase)
    where TEnum : struct, Enum;

/// <summary>What the browser demo's page posts back, and the job it is given (web defaults: camelCase, case-insensitive).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(DemoCommand.BrowserResult))]
[JsonSerializable(typeof(DemoCommand.BrowserJob))]
internal sealed partial class DemoJson : JsonSerializerContext;
