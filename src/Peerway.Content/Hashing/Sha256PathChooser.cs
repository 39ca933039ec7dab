using System.Diagnostics;
using System.Security.Cryptography;

namespace Peerway.Content.Hashing;

/// <summary>
/// What <see cref="Sha256PathChooser.Choose"/> picked, the fastest round of each path in Stopwatch ticks (0: not
/// measured) and what the whole choice cost, warm-up and JIT included (<see cref="Sha256PathChooser.MeasuredChoice"/>).
/// </summary>
public readonly record struct Sha256Choice(Sha256Path Path, long MultiBufferTicks, long PlatformTicks)
{
    /// <summary>What the whole choice took, warm-up and JIT included, in Stopwatch ticks.</summary>
    public long CostTicks { get; init; }

    /// <summary>The chosen path and its timings in milliseconds, for logs.</summary>
    public override string ToString() => MultiBufferTicks == 0
        ? $"{Describe(Path)} (no AVX-512 F/BW: not measured)"
        : $"{Describe(Path)} (16 x {Sha256PathChooser.SampleMessageLength / 1024} KiB, fastest of {Sha256PathChooser.Rounds} rounds: " +
          $"multi-buffer {Milliseconds(MultiBufferTicks):0.000} ms, platform {Milliseconds(PlatformTicks):0.000} ms; " +
          $"choosing took {Milliseconds(CostTicks):0.0} ms)";

    internal static string Describe(Sha256Path path) => path switch
    {
        Sha256Path.MultiBuffer => "multibuffer",
        Sha256Path.Platform => "platform",
        _ => "auto",
    };

    private static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}

/// <summary>
/// Picks the faster way to hash a batch of 16 equal-size leaves on this CPU: the 16-lane AVX-512 code
/// (<see cref="Sha256x16"/>) or the platform's SHA-256 one leaf at a time (OpenSSL, which uses SHA-NI where the CPU has
/// it). Neither is faster by construction: the lanes' speed depends on how wide the CPU executes AVX-512 (Zen 4 splits
/// 512-bit operations into 256-bit halves), SHA-NI's on its SHA units. Measured per core (docs/BENCHMARKS.md): the
/// lanes are 1.97× SHA-NI on the 2-core Xeon, 1.58× on the 2-core EPYC; issue 24 reported the reverse on the EPYC in
/// one run. Asking whether AVX-512 exists is therefore not enough: both are timed on a small sample, once per process,
/// and the faster one is used for every batch.
/// </summary>
/// <remarks>
/// The measurement is the one process-wide cache in Peerway.Content: like <c>Avx512F.IsSupported</c>, it describes the
/// machine, is computed once (thread-safe <see cref="Lazy{T}"/>) and never changes afterwards. It takes about 13 ms on
/// the 2-core EPYC (3 ms of hashing; the rest is mostly the lanes' JIT, paid anyway when they win) and runs only when
/// the worker pipeline imports at least one full batch with <see cref="Sha256Path.Auto"/>; <c>PEERWAY_SHA256</c> (read
/// by the CLI) or <c>ImportOptions.Sha256</c> bypasses it.
/// </remarks>
public static class Sha256PathChooser
{
    /// <summary>The CLI's override: <c>auto</c>, <c>multibuffer</c> or <c>platform</c>.</summary>
    public const string EnvironmentVariable = "PEERWAY_SHA256";

    /// <summary>Timed rounds per path, interleaved; the fastest round of each is compared, so a preemption in one round does not decide.</summary>
    internal const int Rounds = 5;

    /// <summary>
    /// Each round hashes 16 messages of this length: 512 KiB, 0.29 ms with SHA-NI and 0.19 ms in the AVX-512 lanes on
    /// the 2-core EPYC (long enough for the timer, short enough to be rarely preempted).
    /// </summary>
    internal const int SampleMessageLength = 32 * 1024;

    private static readonly Lazy<Sha256Choice> Measured = new(Measure, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>This machine's choice, measured on first use.</summary>
    public static Sha256Choice MeasuredChoice => Measured.Value;

    /// <summary><paramref name="requested"/>, or for <see cref="Sha256Path.Auto"/> the measured choice.</summary>
    internal static Sha256Path Resolve(Sha256Path requested) => requested == Sha256Path.Auto ? Measured.Value.Path : requested;

    /// <summary>
    /// Times both paths with <paramref name="measure"/> (the ticks one round of the given path took): one untimed
    /// warm-up each (the JIT, the sample's first touch), then <paramref name="rounds"/> interleaved rounds. The
    /// multi-buffer path wins only when its fastest round is strictly faster; without AVX-512 nothing is measured.
    /// </summary>
    internal static Sha256Choice Choose(bool multiBufferSupported, Func<Sha256Path, long> measure, int rounds = Rounds)
    {
        ArgumentNullException.ThrowIfNull(measure);
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        if (!multiBufferSupported)
        {
            return new Sha256Choice(Sha256Path.Platform, 0, 0);
        }

        measure(Sha256Path.MultiBuffer);
        measure(Sha256Path.Platform);
        long multiBuffer = long.MaxValue, platform = long.MaxValue;
        for (var round = 0; round < rounds; round++)
        {
            multiBuffer = Math.Min(multiBuffer, Math.Max(1, measure(Sha256Path.MultiBuffer)));
            platform = Math.Min(platform, Math.Max(1, measure(Sha256Path.Platform)));
        }

        return new Sha256Choice(multiBuffer < platform ? Sha256Path.MultiBuffer : Sha256Path.Platform, multiBuffer, platform);
    }

    /// <summary>Parses the value of <see cref="EnvironmentVariable"/>: unset or empty is <see cref="Sha256Path.Auto"/>.</summary>
    public static bool TryParse(string? value, out Sha256Path path)
    {
        path = Sha256Path.Auto;
        switch (value?.Trim().ToLowerInvariant())
        {
            case null or "" or "auto":
                return true;
            case "multibuffer":
                path = Sha256Path.MultiBuffer;
                return true;
            case "platform":
                path = Sha256Path.Platform;
                return true;
            default:
                return false;
        }
    }

    private static Sha256Choice Measure()
    {
        var start = Stopwatch.GetTimestamp();
        var choice = Choose(Sha256x16.IsSupported, MeasureSample());
        return choice with { CostTicks = Stopwatch.GetTimestamp() - start };
    }

    /// <summary>One round of a path over a 512 KiB sample: 16 lanes at once, or 16 platform calls, as the importer hashes a batch.</summary>
    private static Func<Sha256Path, long> MeasureSample()
    {
        var sample = new byte[Sha256x16.Lanes * SampleMessageLength]; // SHA-256 takes as long for any bytes
        var digests = new byte[Sha256x16.Lanes * Sha256x16.DigestSize];
        return path =>
        {
            var start = Stopwatch.GetTimestamp();
            if (path == Sha256Path.MultiBuffer)
            {
                Sha256x16.Hash([], sample, SampleMessageLength, SampleMessageLength, [], digests);
            }
            else
            {
                for (var i = 0; i < Sha256x16.Lanes; i++)
                {
                    SHA256.HashData(sample.AsSpan(i * SampleMessageLength, SampleMessageLength), digests.AsSpan(i * Sha256x16.DigestSize, Sha256x16.DigestSize));
                }
            }

            return Stopwatch.GetTimestamp() - start;
        };
    }
}
