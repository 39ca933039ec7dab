namespace Peerway.Content.Hashing;

/// <summary>How a batch of equal-size UnixFS leaves is hashed with SHA-256 (the digests are the same either way).</summary>
public enum Sha256Path
{
    /// <summary>The faster of the other two on this machine, measured once per process (<see cref="Sha256PathChooser"/>).</summary>
    Auto,

    /// <summary>16 leaves at once in the lanes of AVX-512 registers (<see cref="Sha256x16"/>); needs AVX-512 F and BW.</summary>
    MultiBuffer,

    /// <summary>One leaf at a time with the platform's <see cref="System.Security.Cryptography.SHA256"/> (OpenSSL: SHA-NI where present).</summary>
    Platform,
}
