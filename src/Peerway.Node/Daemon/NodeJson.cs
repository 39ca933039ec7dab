using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Peerway.Node.Daemon;

/// <summary>
/// The node's config file, read by generated code (no run-time reflection: the CLI is published with Native AOT).
/// Unknown keys are errors, so a typo is not silently ignored; comments and trailing commas are allowed; enums (the log
/// levels) by name. A key left out keeps the property's default: <see cref="NodeConfig.Load"/> fills it in before the
/// generated reader, which sets every init-only property (<c>NodeConfigJsonTests</c>).
/// </summary>
[JsonSourceGenerationOptions(
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(NodeConfig))]
[JsonSerializable(typeof(ApiAuthorization))]
internal sealed partial class NodeConfigJson : JsonSerializerContext;

/// <summary>The kubo-style API's answers, built as <see cref="JsonObject"/>s and written by generated code.</summary>
[JsonSerializable(typeof(JsonObject))]
internal sealed partial class KuboJson : JsonSerializerContext;
