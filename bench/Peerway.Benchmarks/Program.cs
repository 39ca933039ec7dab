using BenchmarkDotNet.Running;

// `stun-load HOST:PORT [--seconds S] [--warmup S] [--clients N] [--window W]` is the closed-loop STUN load generator
// used by bench/nat/stun-binding.sh, `stun-echo IP:PORT [--threads N]` its no-op reference server; `turn-load`,
// `turn-alloc` and `udp-echo` serve bench/nat/turn-relay.sh (see TurnLoad.cs); anything else goes to BenchmarkDotNet.
if (args.Length > 0 && args[0] == "stun-load") return Peerway.Benchmarks.StunLoad.Run(args[1..]);
if (args.Length > 0 && args[0] == "stun-echo") return Peerway.Benchmarks.StunLoad.Echo(args[1..]);
if (args.Length > 0 && args[0] == "turn-load") return await Peerway.Benchmarks.TurnLoad.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "turn-alloc") return await Peerway.Benchmarks.TurnLoad.AllocateAsync(args[1..]);
if (args.Length > 0 && args[0] == "udp-echo") return Peerway.Benchmarks.TurnLoad.Echo(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Peerway.Benchmarks.StunLoad).Assembly).Run(args);
return 0;
