// Each test closes the sockets it opens (STYLE.md §9). The check counts the process's sockets, so tests run one at a time.
[assembly: Peerway.TestSupport.NoLeakedSockets]
[assembly: CollectionBehavior(DisableTestParallelization = true)]
