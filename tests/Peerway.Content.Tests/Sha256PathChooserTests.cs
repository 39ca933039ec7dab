using Peerway.Content.Hashing;
using Peerway.Content.UnixFs;

namespace Peerway.Content.Tests;

/// <summary>
/// Issue 24: the SHA-256 path for leaf batches is the one measured faster on this machine, not the one that merely
/// exists. The selection is tested with a fake measurement (scripted ticks per call); no wall time is asserted.
/// </summary>
public sealed class Sha256PathChooserTests
{
    /// <summary>A measurement that returns scripted ticks per path, in call order, and records the calls.</summary>
    private sealed class FakeMeasure(long[] multiBuffer, long[] platform)
    {
        private int _multiBufferCalls;
        private int _platformCalls;

        public List<Sha256Path> Calls { get; } = [];

        public long Measure(Sha256Path path)
        {
            Calls.Add(path);
            return path == Sha256Path.MultiBuffer ? multiBuffer[_multiBufferCalls++] : platform[_platformCalls++];
        }
    }

    // Ticks per call: the first of each list is the untimed warm-up.
    [Theory]
    [InlineData(new long[] { 900, 300, 310, 305, 300, 302 }, new long[] { 500, 600, 590, 600, 610, 600 }, Sha256Path.MultiBuffer)] // Xeon: lanes ~2x SHA-NI
    [InlineData(new long[] { 900, 700, 710, 705, 700, 702 }, new long[] { 500, 300, 290, 300, 310, 300 }, Sha256Path.Platform)] // lanes slower than SHA-NI
    [InlineData(new long[] { 900, 300, 300, 300, 300, 300 }, new long[] { 500, 300, 300, 300, 300, 300 }, Sha256Path.Platform)] // a tie keeps the platform
    public void The_faster_path_by_its_fastest_round_is_chosen(long[] multiBuffer, long[] platform, Sha256Path expected)
    {
        var fake = new FakeMeasure(multiBuffer, platform);
        var choice = Sha256PathChooser.Choose(multiBufferSupported: true, fake.Measure, rounds: 5);
        Assert.Equal(expected, choice.Path);
        Assert.Equal(multiBuffer[1..].Min(), choice.MultiBufferTicks);
        Assert.Equal(platform[1..].Min(), choice.PlatformTicks);
    }

    [Fact]
    public void The_warm_up_round_is_not_counted()
    {
        // The lanes' first call pays for the JIT (huge); the platform's first call is spuriously fast. Neither decides.
        var fake = new FakeMeasure([1_000_000, 300, 300, 300], [1, 600, 600, 600]);
        var choice = Sha256PathChooser.Choose(multiBufferSupported: true, fake.Measure, rounds: 3);
        Assert.Equal(Sha256Path.MultiBuffer, choice.Path);
        Assert.Equal(600, choice.PlatformTicks);
    }

    [Fact]
    public void A_preempted_round_does_not_decide()
    {
        // The lanes are faster, but two of their rounds were preempted (10x); the platform's rounds were not.
        var fake = new FakeMeasure([400, 3_000, 300, 3_100, 310, 305], [400, 500, 500, 510, 500, 505]);
        Assert.Equal(Sha256Path.MultiBuffer, Sha256PathChooser.Choose(true, fake.Measure, rounds: 5).Path);
    }

    [Fact]
    public void Rounds_alternate_between_the_paths_after_one_warm_up_each()
    {
        var fake = new FakeMeasure([1, 1, 1, 1], [2, 2, 2, 2]);
        Sha256PathChooser.Choose(true, fake.Measure, rounds: 3);
        Sha256Path m = Sha256Path.MultiBuffer, p = Sha256Path.Platform;
        Assert.Equal([m, p, m, p, m, p, m, p], fake.Calls);
    }

    [Fact]
    public void Without_AVX512_the_platform_is_chosen_without_measuring()
    {
        var fake = new FakeMeasure([], []);
        var choice = Sha256PathChooser.Choose(multiBufferSupported: false, fake.Measure);
        Assert.Equal(new Sha256Choice(Sha256Path.Platform, 0, 0), choice);
        Assert.Empty(fake.Calls);
    }

    [Fact]
    public void A_zero_tick_round_counts_as_one_tick()
    {
        // A coarse timer may read 0 for both: a tie (platform), never a division or a "0 < 0" surprise.
        var fake = new FakeMeasure([0, 0, 0], [0, 0, 0]);
        var choice = Sha256PathChooser.Choose(true, fake.Measure, rounds: 2);
        Assert.Equal(new Sha256Choice(Sha256Path.Platform, 1, 1), choice);
    }

    [Fact]
    public void The_measured_choice_is_measured_once_and_is_a_path_this_cpu_runs()
    {
        var first = Sha256PathChooser.MeasuredChoice;
        Assert.Equal(first, Sha256PathChooser.MeasuredChoice); // cached: the same ticks, not a second measurement
        Sha256Path[] runnable = Sha256x16.IsSupported ? [Sha256Path.MultiBuffer, Sha256Path.Platform] : [Sha256Path.Platform];
        Assert.Contains(first.Path, runnable);
        Assert.Equal(Sha256x16.IsSupported, first.MultiBufferTicks > 0);
        Assert.Equal(first.Path, Sha256PathChooser.Resolve(Sha256Path.Auto));
        Assert.Equal(Sha256Path.Platform, Sha256PathChooser.Resolve(Sha256Path.Platform));
        Assert.Equal(Sha256Path.MultiBuffer, Sha256PathChooser.Resolve(Sha256Path.MultiBuffer));
    }

    [Theory]
    [InlineData(null, Sha256Path.Auto)]
    [InlineData("", Sha256Path.Auto)]
    [InlineData("auto", Sha256Path.Auto)]
    [InlineData("multibuffer", Sha256Path.MultiBuffer)]
    [InlineData("MultiBuffer", Sha256Path.MultiBuffer)]
    [InlineData(" platform ", Sha256Path.Platform)]
    public void The_environment_value_is_parsed(string? value, Sha256Path expected)
    {
        Assert.True(Sha256PathChooser.TryParse(value, out var path));
        Assert.Equal(expected, path);
    }

    [Theory]
    [InlineData("openssl")]
    [InlineData("avx512")]
    [InlineData("1")]
    public void Other_environment_values_are_refused(string value) => Assert.False(Sha256PathChooser.TryParse(value, out _));

    [Fact]
    public void Forcing_the_multi_buffer_path_is_refused_only_where_AVX512_is_missing()
    {
        var options = new ImportOptions { Sha256 = Sha256Path.MultiBuffer };
        if (Sha256x16.IsSupported)
        {
            options.Validate();
        }
        else
        {
            Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        }

        new ImportOptions { Sha256 = Sha256Path.Platform }.Validate();
        Assert.Throws<ArgumentOutOfRangeException>(new ImportOptions { Sha256 = (Sha256Path)7 }.Validate);
    }
}
