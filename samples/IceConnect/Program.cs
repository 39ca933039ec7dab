// Opens an ICE connection (RFC 8445) between two agents on loopback: each gathers its host candidate, the candidates
// and credentials are handed over in-process (a real application sends them through its signalling channel), the
// controlling agent nominates a pair, and a datagram crosses the connected path.
using System.Net;
using System.Text;
using Peerway.Nat.Ice;
using Peerway.Net;

using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
await using var alice = new IceAgent(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System,
    new IceAgentOptions { Role = IceRole.Controlling });
await using var bob = new IceAgent(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System,
    new IceAgentOptions { Role = IceRole.Controlled });

// Signalling: credentials, then each candidate as it is gathered, then end-of-candidates (trickle ICE, RFC 8838).
alice.SetRemoteCredentials(bob.LocalUfrag, bob.LocalPassword);
bob.SetRemoteCredentials(alice.LocalUfrag, alice.LocalPassword);
alice.LocalCandidateGathered += (_, candidate) => bob.AddRemoteCandidate(candidate);
bob.LocalCandidateGathered += (_, candidate) => alice.AddRemoteCandidate(candidate);
alice.GatheringComplete += (_, _) => bob.AddRemoteEndOfCandidates();
bob.GatheringComplete += (_, _) => alice.AddRemoteEndOfCandidates();
alice.Start();
bob.Start();

var alicePath = await alice.Connected.WaitAsync(cancel.Token);
var bobPath = await bob.Connected.WaitAsync(cancel.Token);
Console.WriteLine($"connected: {alice.SelectedPair!.Local.Address} <-> {alice.SelectedPair.Remote.Address} ({alice.SelectedPair.Kind})");

var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
bobPath.Start((datagram, _) => received.TrySetResult(Encoding.UTF8.GetString(datagram)));
alicePath.Send("hello over ICE"u8, alice.SelectedPair.Remote.Address);
var message = await received.Task.WaitAsync(cancel.Token);
Console.WriteLine($"bob received: {message}");
return message == "hello over ICE" ? 0 : 1;
