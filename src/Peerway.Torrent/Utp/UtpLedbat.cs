namespace Peerway.Torrent.Utp;

/// <summary>
/// The base-delay history of RFC 6817 §3.4.2 as libtorrent keeps it (timestamp_history): the minimum one-way delay
/// sample of each of the last 20 minutes; a sample's queuing delay is the sample minus the minimum of those. The clocks
/// of the two ends are not synchronised, so only differences matter (arithmetic modulo 2^32).
/// </summary>
internal sealed class UtpDelayHistory
{
    private const int HistorySize = 20;

    /// <summary>libtorrent: "don't step base delay history unless we have at least 120 samples".</summary>
    private const int MinSamplesPerStep = 120;

    private readonly uint[] _history = new uint[HistorySize];
    private uint _base;
    private int _index;
    private int _samples = -1;

    public bool Initialized => _samples >= 0;

    public uint Base => _base;

    /// <summary>Adds a sample (µs); <paramref name="step"/> once a minute moves to the next history slot. Returns the
    /// queuing delay: sample minus base.</summary>
    public uint AddSample(uint sample, bool step)
    {
        if (!Initialized)
        {
            Array.Fill(_history, sample);
            _base = sample;
            _samples = 0;
        }

        if (_samples < 0xfffe) _samples++;
        if (LessWrap(sample, _base))
        {
            _base = sample;
            _history[_index] = sample;
        }
        else if (LessWrap(sample, _history[_index]))
        {
            _history[_index] = sample;
        }

        var delay = unchecked(sample - _base);
        if (step && _samples > MinSamplesPerStep)
        {
            _samples = 0;
            _index = (_index + 1) % HistorySize;
            _history[_index] = sample;
            _base = sample;
            foreach (var h in _history)
            {
                if (LessWrap(h, _base)) _base = h;
            }
        }

        return delay;
    }

    /// <summary>Shifts the base (libtorrent adjusts our base when the remote's clock drifts against ours).</summary>
    public void AdjustBase(int change)
    {
        _base = unchecked((uint)(_base + change));
        for (var i = 0; i < _history.Length; i++)
        {
            if (LessWrap(_history[i], _base)) _history[i] = _base;
        }
    }

    private static bool LessWrap(uint a, uint b) => a != b && unchecked(b - a) < 0x8000_0000u;
}

/// <summary>libtorrent's sliding_average&lt;int, 16&gt;: a moving mean and mean deviation of RTT samples (ms).</summary>
internal sealed class UtpRttEstimator
{
    private const int FixedPoint = 64;
    private const int InvertedGain = 16;
    private long _mean;
    private long _deviation;
    private int _samples;

    public int Samples => _samples;

    public void Add(int milliseconds)
    {
        long s = (long)milliseconds * FixedPoint;
        var deviation = _samples > 0 ? Math.Abs(_mean - s) : 0;
        if (_samples < InvertedGain) _samples++;
        _mean += (s - _mean) / _samples;
        if (_samples > 1) _deviation += (deviation - _deviation) / (_samples - 1);
    }

    public int Mean => _samples > 0 ? (int)((_mean + 32) / FixedPoint) : 0;

    public int Deviation => _samples > 1 ? (int)((_deviation + 32) / FixedPoint) : 0;
}

/// <summary>
/// LEDBAT (RFC 6817) exactly as libtorrent's utp_socket_impl::do_ledbat runs it: the congestion window in 16.16
/// fixed point grows by gain × (acked / in-flight) × (target − delay) / target per ACK — at most
/// <see cref="UtpOptions.GainFactor"/> bytes per RTT at zero queuing delay, and shrinking above the target — and, in
/// slow start, by the acked bytes (TCP-like) until the delay reaches the target or the window passes ssthresh.
/// The window only moves while the sender fills it, and never falls below one packet (RFC 6817 §2.4.2, unlike
/// BEP 29's zero).
/// </summary>
internal sealed class UtpLedbat(UtpOptions options, int initialPacket)
{
    private long _cwnd = 1500L << 16; // libtorrent starts at TORRENT_ETHERNET_MTU
    private long _nextLossCut = long.MinValue;

    public bool SlowStart { get; private set; } = true;

    public int SlowStartThreshold { get; private set; }

    /// <summary>The congestion window in bytes.</summary>
    public int Window => (int)Math.Min(int.MaxValue, _cwnd >> 16);

    /// <summary>Packet size the window never falls under (libtorrent's m_mtu).</summary>
    public int Packet { get; set; } = initialPacket;

    /// <summary>One ACK's worth of window change: <paramref name="ackedBytes"/> of <paramref name="inFlight"/> bytes
    /// were acked, with a queuing delay of <paramref name="delayMicros"/>; <paramref name="bytesInFlightNow"/> remain.</summary>
    public void OnAck(int ackedBytes, int delayMicros, int inFlight, int bytesInFlightNow)
    {
        if (ackedBytes <= 0 || inFlight <= 0) return;
        var target = Math.Max(1, (int)(options.TargetDelay.Ticks / 10));

        // libtorrent: "true if the upper layer is pushing enough data down the socket to be limited by the cwnd"
        var saturated = bytesInFlightNow + ackedBytes + Packet > (_cwnd >> 16);
        var windowFactor = ((long)ackedBytes << 16) / inFlight;
        var delayFactor = ((long)(target - delayMicros) << 16) / target;
        if (delayMicros >= target && SlowStart)
        {
            SlowStartThreshold = (int)((_cwnd >> 16) / 2);
            SlowStart = false;
        }

        var linearGain = ((windowFactor * delayFactor) >> 16) * options.GainFactor;
        long gain = 0;
        if (saturated)
        {
            var exponentialGain = (long)ackedBytes << 16;
            if (SlowStart)
            {
                if (SlowStartThreshold != 0 && ((_cwnd + exponentialGain) >> 16) > SlowStartThreshold)
                {
                    SlowStart = false;
                    gain = linearGain;
                }
                else
                {
                    gain = Math.Max(exponentialGain, linearGain);
                }
            }
            else
            {
                gain = linearGain;
            }
        }

        // RFC 6817 §2.4.2: never below one packet.
        if ((_cwnd + gain) >> 16 < Packet) _cwnd = (long)Packet << 16;
        else _cwnd = Math.Min(_cwnd + gain, (long)int.MaxValue << 16);
    }

    /// <summary>A packet sent at or after the last cut was lost (fast retransmit): halve the window at most once per
    /// 100 ms (libtorrent loss_multiplier, cwnd_reduce_timer) and leave slow start.</summary>
    public bool OnLoss(long nowMicros)
    {
        if (nowMicros < _nextLossCut) return false;
        _nextLossCut = nowMicros + 100_000;
        _cwnd = Math.Max(_cwnd * options.LossMultiplier / 100, (long)Packet << 16);
        if (SlowStart)
        {
            SlowStartThreshold = Window;
            SlowStart = false;
        }

        return true;
    }

    /// <summary>The retransmission timer fired: back to one packet and slow start (libtorrent), or a decay when the
    /// direction was merely idle.</summary>
    public void OnTimeout(bool idle)
    {
        _cwnd = idle ? Math.Max(_cwnd * 2 / 3, (long)Packet << 16) : (long)Packet << 16;
        if (!idle) SlowStart = true;
    }
}
