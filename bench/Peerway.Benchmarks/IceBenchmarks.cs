using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Peerway.Nat.Ice;
using Peerway.Nat.Turn;
using Peerway.Net;
using Peerway.Simulation;

namespace Peerway.Benchmarks;

/// <summary>
/// Time for two ICE agents to connect over the virtual network, per path: "host" (both on public addresses), "srflx"
/// (both behind endpoint-independent NATs) and "relay" (both behind address-and-port-dependent NATs: only TURN works).
/// Every case gathers from the same STUN/TURN server, trickles candidates over in-memory signaling and runs on the
/// discrete-event <see cref="SimulationScheduler"/> with default agent options, so the virtual time is the protocol's
/// (Ta pacing, nomination) and the wall time is the engine's cost.
/// </summary>
[MemoryDiagnoser]
public class IceBenchmarks
{
    private int _seed;

    [Params("host", "srflx", "relay")]
    public string Case { get; set; } = "host";

    [Benchmark]
    public TimeSpan Connect() => IceWorld.Connect(Case, ++_seed, TimeSpan.FromMilliseconds(10)).Virtual;

    /// <summary><c>ice-connect [--runs N] [--latency-ms L]</c>: virtual and wall time to connect per case.</summary>
    public static int Report(string[] args)
    {
        var runs = Option(args, "--runs", 20);
        var latency = TimeSpan.FromMilliseconds(Option(args, "--latency-ms", 10));
        Console.WriteLine($"ICE connect over the virtual network, one-way latency {latency.TotalMilliseconds} ms, {runs} runs per case");
        foreach (var kind in new[] { "host", "srflx", "relay" })
        {
            var virtualTimes = new List<double>();
            var wallTimes = new List<double>();
            var kinds = new HashSet<string>();
            long violations = 0;
            for (var i = 0; i < runs + 1; i++)
            {
                var clock = Stopwatch.StartNew();
                var r = IceWorld.Connect(kind, i + 1, latency);
                clock.Stop();
                if (i == 0) continue; // warm-up (JIT)
                virtualTimes.Add(r.Virtual.TotalMilliseconds);
                wallTimes.Add(clock.Elapsed.TotalMilliseconds);
                kinds.Add(r.Kind);
                violations += r.ThreadViolations;
            }

            virtualTimes.Sort();
            wallTimes.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{kind,-6} selected {string.Join('/', kinds)}: virtual median {virtualTimes[runs / 2]:F0} ms (min {virtualTimes[0]:F0}, max {virtualTimes[^1]:F0}); wall median {wallTimes[runs / 2]:F2} ms; thread violations {violations}"));
        }

        return 0;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}

internal static class IceWorld
{
    private static readonly IPAddress ServerIp = IPAddress.Parse("198.51.100.1");

    public static (TimeSpan Virtual, string Kind, long ThreadViolations) Connect(string kind, int seed, TimeSpan oneWay)
    {
        var sim = new SimulationScheduler(seed);
        var net = new VirtualNetwork(sim, new VirtualLinkOptions { Latency = (_, _) => oneWay });
        var serverEp = new IPEndPoint(ServerIp, 3478);
        using var server = new TurnServer([net.CreateSocket(serverEp)], new RelayFactory(net), sim.Time, new TurnServerOptions
        {
            Realm = "bench",
            Users = new Dictionary<string, string> { ["alice"] = "secret" },
            AllowedPeers = [IPNetwork.Parse("198.51.100.0/24")],
        });
        server.Start();
        var (mapping, filtering) = kind switch
        {
            "srflx" => (NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent),
            _ => (NatMappingBehavior.AddressAndPortDependent, NatFilteringBehavior.AddressAndPortDependent),
        };

        IDatagramSocket Socket(int n) => kind == "host"
            ? net.CreateSocket(new IPEndPoint(IPAddress.Parse($"198.51.100.{20 + n}"), 5000))
            : net.AddNat(IPAddress.Parse($"198.51.100.{10 + n}"), IPNetwork.Parse($"192.168.{n}.0/24"), new VirtualNatOptions { Mapping = mapping, Filtering = filtering }).CreateSocket();

        IceAgent Agent(int n, IceRole role) => new(Socket(n), sim.Time, new IceAgentOptions
        {
            Role = role,
            StunServer = serverEp,
            TurnServer = serverEp,
            TurnCredentials = new TurnCredentials("alice", "secret"),
        });

        using var a = Agent(1, IceRole.Controlling);
        using var b = Agent(2, IceRole.Controlled);
        var sa = new SimSignaling(sim, oneWay);
        var sb = new SimSignaling(sim, oneWay) { Peer = sa };
        sa.Peer = sb;
        IceSignaling.Attach(a, sa);
        IceSignaling.Attach(b, sb);
        var start = sim.Now;
        a.Start();
        b.Start();
        sim.RunUntil(() => a.State is IceState.Connected or IceState.Failed && b.State is IceState.Connected or IceState.Failed, TimeSpan.FromSeconds(60));
        if (a.State != IceState.Connected || b.State != IceState.Connected) throw new InvalidOperationException($"{kind}: {a.State} {a.FailureReason}");
        return (sim.Now - start, a.SelectedPair!.Kind, sim.ThreadViolations);
    }

    private sealed class RelayFactory(VirtualNetwork network) : IRelaySocketFactory
    {
        private int _next = 50_000;

        public bool Supports(AddressFamily family) => family == AddressFamily.InterNetwork;

        public IDatagramSocket? TryCreate(AddressFamily family) => network.CreateSocket(new IPEndPoint(ServerIp, ++_next));
    }

    private sealed class SimSignaling(SimulationScheduler sim, TimeSpan delay) : ISignalingChannel
    {
        private Action<string>? _handler;

        public SimSignaling? Peer { get; set; }

        public Task SendAsync(string message, CancellationToken cancellationToken = default)
        {
            var peer = Peer!;
            sim.Schedule(delay, () => peer._handler?.Invoke(message));
            return Task.CompletedTask;
        }

        public void Start(Action<string> onMessage) => _handler = onMessage;
    }
}
