using BenchmarkDotNet.Running;

// Console modes (anything else goes to BenchmarkDotNet):
//   stun-load HOST:PORT [--seconds S] [--warmup S] [--clients N] [--window W]: closed-loop STUN Binding load
//   stun-echo IP:PORT [--threads N]: its no-op reference server (bench/nat/stun-binding.sh)
//   turn-load, turn-alloc, udp-echo: TURN relay and allocation load (bench/nat/turn-relay.sh, TurnLoad.cs)
//   utp-get IP:PORT TORRENT OUT: a uTP download from one seed, seconds on stdout (bench/torrent/utp.sh)
//   idle-torrents [--torrents N] [--seconds S]: one TorrentClient holding N torrents with no peers, CPU and memory while idle
//   ice-connect [--runs N] [--latency-ms L]: ICE time to connect per path over the virtual network
//   sctp-loss [--mib M] [--rounds N] [--latency-ms L]: SCTP goodput over the virtual network at 0 % and 1 % loss
//   libp2p-bench handshakes N | stream MIB STREAMS: Noise handshakes and Yamux throughput between two hosts (bench/content/libp2p.sh)
//   rtc-bench [--rounds N] [--mib M] ...: WebRTC data channels, Peerway/Chromium/werift pairs (bench/webrtc/throughput.sh)
if (args.Length > 0 && args[0] == "stun-load") return Peerway.Benchmarks.StunLoad.Run(args[1..]);
if (args.Length > 0 && args[0] == "stun-echo") return Peerway.Benchmarks.StunLoad.Echo(args[1..]);
if (args.Length > 0 && args[0] == "turn-load") return await Peerway.Benchmarks.TurnLoad.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "turn-alloc") return await Peerway.Benchmarks.TurnLoad.AllocateAsync(args[1..]);
if (args.Length > 0 && args[0] == "ice-connect") return Peerway.Benchmarks.IceBenchmarks.Report(args[1..]);
if (args.Length > 0 && args[0] == "sctp-loss") return Peerway.Benchmarks.SctpBenchmarks.Report(args[1..]);
if (args.Length > 0 && args[0] == "libp2p-bench") return await Peerway.Benchmarks.Libp2pBench.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "rtc-bench") return await Peerway.Benchmarks.RtcBench.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "utp-get") return await Peerway.Benchmarks.UtpGet.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "idle-torrents") return await Peerway.Benchmarks.IdleTorrents.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "udp-echo") return Peerway.Benchmarks.TurnLoad.Echo(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Peerway.Benchmarks.StunLoad).Assembly).Run(args);
return 0;
