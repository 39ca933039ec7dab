namespace Peerway.Torrent.Utp;

/// <summary>Limits and tuning of a <see cref="UtpTransport"/>; the defaults are libtorrent 2.0's settings_pack values.</summary>
public sealed record UtpOptions
{
    /// <summary>LEDBAT target queuing delay (libtorrent utp_target_delay: 100 ms; RFC 6817 §3.1 says at most 100 ms).</summary>
    public TimeSpan TargetDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Most bytes the window grows by per RTT at zero delay (libtorrent utp_gain_factor: 3000).</summary>
    public int GainFactor { get; init; } = 3000;

    /// <summary>Floor of the retransmission timeout (libtorrent utp_min_timeout: 500 ms).</summary>
    public TimeSpan MinTimeout { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>A SYN unanswered this long times out (libtorrent utp_connect_timeout: 3 s), resent <see cref="SynResends"/> times.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>libtorrent utp_syn_resends: 2.</summary>
    public int SynResends { get; init; } = 2;

    /// <summary>Consecutive timeouts of one packet before the connection fails (libtorrent utp_num_resends: 3, plus
    /// slack for lossy links).</summary>
    public int MaxResends { get; init; } = 6;

    /// <summary>Percent the window keeps after a loss (libtorrent utp_loss_multiplier: 50).</summary>
    public int LossMultiplier { get; init; } = 50;

    /// <summary>An idle connection sends an ST_STATE this often so NAT mappings stay (libtorrent: 29 s).</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(29);

    /// <summary>Payload bytes of a packet before MTU probing finds more (safe on any IPv4/IPv6 path).</summary>
    public int InitialPayload { get; init; } = 1200;

    /// <summary>Largest payload MTU probing tries. libtorrent 2.0 reads datagrams into a 1,500-byte buffer (a larger one
    /// is truncated), so the default keeps a packet (20-byte header, up to 34 bytes of SACK) within an Ethernet MTU;
    /// between Peerway peers on loopback or a jumbo path, up to 65,000 lets probing reach large packets.</summary>
    public int MaxPayload { get; init; } = 1400;

    /// <summary>Largest payload offered to a peer that speaks Peerway's large-packet extension (an option in ST_SYN and
    /// the ST_STATE answering it, which libtorrent and libutp skip as unknown); between two Peerway peers MTU probing then
    /// grows packets up to the smaller offer or the path's MTU (loopback: 65,536; jumbo Ethernet: 9,000). 0 turns the
    /// extension off (every peer is then held to <see cref="MaxPayload"/>).</summary>
    public int LargePayload { get; init; } = 64_000;

    /// <summary>Receive buffer per connection: the most bytes advertised in wnd_size. 4 MiB, about what Linux lets a TCP
    /// receive window grow to (tcp_rmem's 6 MiB maximum, less its overhead share): with 1 MiB a reader that falls a
    /// few milliseconds behind (a busy machine) closed the window and held a fast sender back. The ring grows only as
    /// far as the reader lags.</summary>
    public int ReceiveBuffer { get; init; } = 4 * 1024 * 1024;

    /// <summary>Send buffer per connection: writes wait while it is full.</summary>
    public int SendBuffer { get; init; } = 1024 * 1024;

    /// <summary>Most connections (established and half-open) at once; SYNs beyond get a reset.</summary>
    public int MaxConnections { get; init; } = 512;

    /// <summary>Most incoming connections not yet accepted; SYNs beyond are answered with a reset.</summary>
    public int MaxPendingAccepts { get; init; } = 64;

    /// <summary>Most resets sent per second to packets of unknown connections (no reflection floods).</summary>
    public int MaxResetsPerSecond { get; init; } = 200;

    /// <summary>A closing connection whose FIN is not acked is dropped after this.</summary>
    public TimeSpan LingerTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Nagle-like coalescing: a partial packet waits while earlier data is unacked.</summary>
    public bool Nagle { get; init; } = true;

    /// <summary>Resume readers and writers on the thread that processed the datagram (deterministic tests) instead of
    /// the thread pool (production: the engine's work never stalls the receive loop).</summary>
    public bool CompleteInline { get; init; }

    /// <summary>Seed for connection ids and initial sequence numbers; null for a random seed.</summary>
    public int? RandomSeed { get; init; }

    /// <summary>First seq_nr of every connection instead of a random one (tests drive the wrap-around with it).</summary>
    internal ushort? InitialSequenceNumber { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(TargetDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(GainFactor, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(MinTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ConnectTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfNegative(SynResends);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxResends, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(LossMultiplier, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(LossMultiplier, 100);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(KeepAliveInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(InitialPayload, 128);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPayload, InitialPayload);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxPayload, 65_000);
        if (LargePayload != 0)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(LargePayload, MaxPayload);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(LargePayload, 65_000);
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(ReceiveBuffer, MaxPayload);
        ArgumentOutOfRangeException.ThrowIfLessThan(SendBuffer, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConnections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPendingAccepts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxResetsPerSecond, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(LingerTimeout, TimeSpan.Zero);
    }
}
