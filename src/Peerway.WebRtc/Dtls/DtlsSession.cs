using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto;
using Org.BouncyCastle.Tls.Crypto.Impl.BC;
using Peerway.Net;

namespace Peerway.WebRtc.Dtls;

/// <summary>The DTLS handshake failed or the peer's certificate does not match its <c>a=fingerprint</c>.</summary>
public sealed class DtlsHandshakeException : Exception
{
    /// <summary>A handshake failure with no message.</summary>
    public DtlsHandshakeException()
    {
    }

    /// <summary>A handshake failure described by <paramref name="message"/>.</summary>
    public DtlsHandshakeException(string message) : base(message)
    {
    }

    /// <summary>A handshake failure described by <paramref name="message"/>, caused by <paramref name="innerException"/>.</summary>
    public DtlsHandshakeException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>
/// DTLS 1.2 (RFC 6347) over the ICE path with BouncyCastle, as WebRTC uses it (RFC 8827 §6.5, RFC 8842): both sides
/// present self-signed certificates, each checked against the fingerprint the peer signalled; the DTLS role follows
/// <c>a=setup</c> (active = client). Incoming datagrams are demultiplexed by first byte (RFC 7983 §7: 20..63 is DTLS;
/// STUN, 0..3, is taken by the ICE agent before it gets here). BouncyCastle's protocol is blocking: the handshake runs
/// on a thread of its own; after it, records are read where the datagrams arrive — the path's receive callback decrypts
/// them and feeds SCTP in place (no reader thread per connection, no hand-off per datagram); sends are serialised by a
/// lock.
/// </summary>
internal sealed class DtlsSession : IDisposable
{
    /// <summary>RFC 7983 §7: the first byte of a DTLS record is 20..63.</summary>
    internal static bool IsDtls(ReadOnlySpan<byte> datagram) => datagram.Length > 0 && datagram[0] is >= 20 and <= 63;

    /// <summary>Bound on datagrams queued for the DTLS reader (a flood beyond it is dropped).</summary>
    private const int MaxQueued = 1024;

    /// <summary>Path MTU assumed for records: WebRTC keeps datagrams under 1280 bytes with room for IPv6/TURN.</summary>
    internal const int Mtu = 1200;

    private readonly PathTransport _transport;
    private readonly Lock _sendGate = new();
    private readonly ILogger _log;
    private DtlsTransport? _dtls;
    private int _closed;

    private DtlsSession(IDatagramSocket path, ILogger log)
    {
        _transport = new PathTransport(path, _sendGate);
        _log = log;
    }

    /// <summary>The peer's certificate (DER) once the handshake is done.</summary>
    public byte[]? PeerCertificate { get; private set; }

    /// <summary>The RFC 5764 SRTP protection profile the handshake negotiated (unused here), or -1 if the peer had none.</summary>
    public int SrtpProfile { get; private set; } = -1;

    /// <summary>
    /// Runs the handshake on <paramref name="path"/>: as client when <paramref name="client"/>, else as server. Fails
    /// with <see cref="DtlsHandshakeException"/> on a fingerprint mismatch, a fatal alert or after <paramref name="timeout"/>.
    /// </summary>
    public static async Task<DtlsSession> HandshakeAsync(IDatagramSocket path, DtlsCertificate local, byte[] remoteFingerprint, bool client, TimeSpan timeout, ILogger log, CancellationToken cancellationToken)
    {
        var session = new DtlsSession(path, log);
        using var reg = cancellationToken.Register(() => session._transport.Close());
        var handshake = Task.Factory.StartNew(() => session.RunHandshake(local, remoteFingerprint, client, timeout), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            await handshake.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TlsException or IOException or InvalidOperationException)
        {
            session.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            throw new DtlsHandshakeException("DTLS handshake failed: " + ex.Message, ex);
        }

        return session;
    }

    private void RunHandshake(DtlsCertificate local, byte[] remoteFingerprint, bool client, TimeSpan timeout)
    {
        var crypto = new BcTlsCrypto(new SecureRandom());
        var verifier = new FingerprintVerifier(remoteFingerprint, der => PeerCertificate = der);
        var millis = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
        try
        {
            if (client)
            {
                var tlsClient = new Client(crypto, local, verifier, millis);
                _dtls = new DtlsClientProtocol().Connect(tlsClient, _transport);
                SrtpProfile = tlsClient.SrtpProfile;
            }
            else
            {
                var tlsServer = new Server(crypto, local, verifier, millis);
                _dtls = new DtlsServerProtocol().Accept(tlsServer, _transport);
                SrtpProfile = tlsServer.SrtpProfile;
            }
        }
        finally
        {
            _transport.ReleaseRecordGate();
        }
    }

    /// <summary>
    /// Starts reading records: each application record goes to <paramref name="onData"/>, on the thread the datagram
    /// arrived on (one at a time); <paramref name="onClosed"/> runs once at the end.
    /// </summary>
    public void Start(Action<ReadOnlyMemory<byte>> onData, Action<string> onClosed)
    {
        var dtls = _dtls ?? throw new InvalidOperationException("Handshake first.");
        var buffer = new byte[dtls.GetReceiveLimit() + 64];
        var ended = 0;
        void End(string reason)
        {
            Interlocked.Exchange(ref _closed, 1);
            if (Interlocked.Exchange(ref ended, 1) == 0) onClosed(reason);
        }

        // Called with the datagrams queued; the transport runs it on one thread at a time.
        void Drain()
        {
            try
            {
                while (Volatile.Read(ref _closed) == 0 && _transport.HasQueued)
                {
                    // The record gate (see PathTransport) is held while BouncyCastle processes a record, never while
                    // SCTP runs: SCTP sends from under its own lock, and a send waits for the gate.
                    int n;
                    try
                    {
                        // A record that is not application data (a handshake retransmission to answer, an alert) makes
                        // BouncyCastle read on: with the queue empty it returns within the 1 ms asked for.
                        n = dtls.Receive(buffer, 0, buffer.Length, 1);
                    }
                    finally
                    {
                        _transport.ReleaseRecordGate();
                    }

                    // Then any further records of the same datagram.
                    while (n > 0)
                    {
                        onData(buffer.AsMemory(0, n));
                        _transport.EnterRecordGate();
                        try
                        {
                            n = dtls.ReceivePending(buffer, 0, buffer.Length, null);
                        }
                        finally
                        {
                            _transport.ReleaseRecordGate();
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is TlsException or IOException or ObjectDisposedException)
            {
                var reason = ex.GetType().Name + ": " + ex.Message;
                LogClosed(_log, reason);
                End(reason);
            }
        }

        _transport.ReadInline(Drain, () => End("closed"));
    }

    /// <summary>Sends one application record; dropped silently once closed.</summary>
    public void Send(ReadOnlySpan<byte> data)
    {
        if (Volatile.Read(ref _closed) != 0 || _dtls is null) return;
        lock (_sendGate)
        {
            try
            {
                _dtls.Send(data);
            }
            catch (Exception ex) when (ex is TlsException or IOException)
            {
                LogClosed(_log, ex.Message);
            }
        }
    }

    /// <summary>Sends close_notify (RFC 5246 §7.2.1) and stops the reader.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        lock (_sendGate)
        {
            try
            {
                _dtls?.Close();
            }
            catch (Exception ex) when (ex is TlsException or IOException)
            {
                LogClosed(_log, ex.Message);
            }
        }

        _transport.Close();
    }

    private static void LogClosed(ILogger log, string reason) => log.LogDebug("DTLS closed: {Reason}", reason);

    /// <summary>Checks the peer's leaf certificate against the signalled SHA-256 fingerprint (RFC 8122 §5).</summary>
    private sealed class FingerprintVerifier(byte[] expected, Action<byte[]> onVerified)
    {
        public void Verify(Certificate? certificate)
        {
            if (certificate is null || certificate.IsEmpty) throw new TlsFatalAlert(AlertDescription.bad_certificate);
            var der = certificate.GetCertificateAt(0).GetEncoded();
            if (!CryptographicOperations.FixedTimeEquals(SHA256.HashData(der), expected)) throw new TlsFatalAlert(AlertDescription.bad_certificate);
            onVerified(der);
        }
    }

    private static Certificate ToTls(BcTlsCrypto crypto, DtlsCertificate local) =>
        new([crypto.CreateCertificate(local.Der)]);

    private static BcDefaultTlsCredentialedSigner Signer(TlsContext context, BcTlsCrypto crypto, DtlsCertificate local) =>
        new BcDefaultTlsCredentialedSigner(new TlsCryptoParameters(context), crypto, local.PrivateKey, ToTls(crypto, local), new SignatureAndHashAlgorithm(Org.BouncyCastle.Tls.HashAlgorithm.sha256, SignatureAlgorithm.ecdsa));

    // Both certificates are ECDSA P-256 (as browsers make them), so only ECDHE_ECDSA suites; AEAD first.
    private static readonly int[] CipherSuites =
    [
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
    ];

    // RFC 5764 use_srtp: no SRTP runs here, but WebRTC stacks negotiate it on data-only handshakes too, and werift
    // requires it: without a profile its DTLS transport fails right after the handshake ("need srtpProfile"), so it
    // never starts SCTP and, as offerer (SCTP client by its ICE role), never sends INIT. So the client offers these
    // and the server picks the client's first that it knows.
    private static readonly int[] SrtpProfiles =
    [
        SrtpProtectionProfile.SRTP_AEAD_AES_128_GCM,
        SrtpProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80,
    ];

    private sealed class Client(BcTlsCrypto crypto, DtlsCertificate local, FingerprintVerifier verifier, int timeoutMillis) : DefaultTlsClient(crypto)
    {
        protected override ProtocolVersion[] GetSupportedVersions() => ProtocolVersion.DTLSv12.Only();

        public override IDictionary<int, byte[]> GetClientExtensions()
        {
            var extensions = TlsExtensionsUtilities.EnsureExtensionsInitialised(base.GetClientExtensions());
            TlsSrtpUtilities.AddUseSrtpExtension(extensions, new UseSrtpData(SrtpProfiles, TlsUtilities.EmptyBytes));
            return extensions;
        }

        public int SrtpProfile { get; private set; } = -1;

        // RFC 5764 §4.1.1: a server's use_srtp names exactly one of the profiles offered.
        public override void ProcessServerExtensions(IDictionary<int, byte[]> serverExtensions)
        {
            base.ProcessServerExtensions(serverExtensions);
            var chosen = TlsSrtpUtilities.GetUseSrtpExtension(serverExtensions);
            if (chosen is null) return;
            if (chosen.ProtectionProfiles.Length != 1 || !SrtpProfiles.Contains(chosen.ProtectionProfiles[0])) throw new TlsFatalAlert(AlertDescription.illegal_parameter);
            SrtpProfile = chosen.ProtectionProfiles[0];
        }

        protected override int[] GetSupportedCipherSuites() => TlsUtilities.GetSupportedCipherSuites(Crypto, CipherSuites);

        public override int GetHandshakeTimeoutMillis() => timeoutMillis;

        public override TlsAuthentication GetAuthentication() => new Authentication(this);

        private sealed class Authentication(Client owner) : TlsAuthentication
        {
            public void NotifyServerCertificate(TlsServerCertificate serverCertificate) => owner.Verifier.Verify(serverCertificate.Certificate);

            public TlsCredentials GetClientCredentials(CertificateRequest certificateRequest) => Signer(owner.m_context, owner.BcCrypto, owner.Local);
        }

        private FingerprintVerifier Verifier => verifier;

        private DtlsCertificate Local => local;

        private BcTlsCrypto BcCrypto => crypto;
    }

    private sealed class Server(BcTlsCrypto crypto, DtlsCertificate local, FingerprintVerifier verifier, int timeoutMillis) : DefaultTlsServer(crypto)
    {
        protected override ProtocolVersion[] GetSupportedVersions() => ProtocolVersion.DTLSv12.Only();

        protected override int[] GetSupportedCipherSuites() => TlsUtilities.GetSupportedCipherSuites(Crypto, CipherSuites);

        public override int GetHandshakeTimeoutMillis() => timeoutMillis;

        protected override TlsCredentialedSigner GetECDsaSignerCredentials() => Signer(m_context, crypto, local);

        // RFC 8827 §6.5: both endpoints authenticate, so the server asks for the client's certificate.
        public override CertificateRequest GetCertificateRequest() =>
            new([ClientCertificateType.ecdsa_sign, ClientCertificateType.rsa_sign], TlsUtilities.GetDefaultSupportedSignatureAlgorithms(m_context), null);

        public override void NotifyClientCertificate(Certificate clientCertificate) => verifier.Verify(clientCertificate);

        public int SrtpProfile { get; private set; } = -1;

        public override void ProcessClientExtensions(IDictionary<int, byte[]> clientExtensions)
        {
            base.ProcessClientExtensions(clientExtensions);
            var offered = TlsSrtpUtilities.GetUseSrtpExtension(clientExtensions);
            if (offered is not null) SrtpProfile = offered.ProtectionProfiles.FirstOrDefault(p => SrtpProfiles.Contains(p), -1);
        }

        public override IDictionary<int, byte[]> GetServerExtensions()
        {
            var extensions = TlsExtensionsUtilities.EnsureExtensionsInitialised(base.GetServerExtensions());
            if (SrtpProfile >= 0) TlsSrtpUtilities.AddUseSrtpExtension(extensions, new UseSrtpData([SrtpProfile], TlsUtilities.EmptyBytes));
            return extensions;
        }
    }

    /// <summary>
    /// BouncyCastle's blocking datagram transport over the ICE path: a bounded queue fed by the path's handler.
    /// <para>
    /// The record gate: BouncyCastle's record layer is not safe for a Send on one thread while the reader thread
    /// processes a record. When the peer retransmits its last handshake flight (its timer fired because our final
    /// flight was late or lost — common under load), the reader resends our flight: the record layer switches its write
    /// epoch back to the handshake's (ResetWriteEpoch) until the Finished. An application Send in that window is written
    /// as a *handshake* record in the old epoch, in the clear, and the peer fails the connection right after the
    /// handshake ("DTLS closed"). So the thread that took a datagram holds the same gate as <see cref="Send(byte[], int, int)"/> until it
    /// waits for the next one or its Receive returns (<see cref="ReleaseRecordGate"/>): records are processed and
    /// application records written one at a time, and nobody waits on the gate while the reader is idle.
    /// </para>
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Close ends it; BouncyCastle's threads may still call Receive after that, so its collection and token source stay usable (neither holds an OS handle: no timer, no wait handle requested).")]
    private sealed class PathTransport : DatagramTransport
    {
        private readonly IDatagramSocket _path;
        private readonly Lock _recordGate;
        private readonly BlockingCollection<byte[]> _queue = new(new ConcurrentQueue<byte[]>(), MaxQueued);
        private readonly CancellationTokenSource _closed = new();
        private Action? _drain;
        private int _draining;

        public PathTransport(IDatagramSocket path, Lock recordGate)
        {
            _path = path;
            _recordGate = recordGate;
            path.Start((datagram, _) =>
            {
                // RFC 7983 §7: anything outside 20..63 is not DTLS; a full queue drops (flood).
                if (!IsDtls(datagram) || _closed.IsCancellationRequested) return;
                _queue.TryAdd(datagram.ToArray());
                if (Volatile.Read(ref _drain) is not null) DrainNow();
            });
        }

        public bool HasQueued => _queue.Count > 0;

        /// <summary>
        /// After the handshake: records are read by <paramref name="drain"/> where datagrams arrive, instead of by a
        /// thread blocked in Receive. <paramref name="onClosed"/> runs when the transport closes.
        /// </summary>
        public void ReadInline(Action drain, Action onClosed)
        {
            _closed.Token.Register(onClosed);
            Volatile.Write(ref _drain, drain);
            DrainNow(); // what arrived between the handshake and now
        }

        private void DrainNow()
        {
            // One drainer at a time; a datagram queued while another thread drains is taken by that thread's loop, and
            // one queued just as it finishes is caught by the re-check.
            while (_queue.Count > 0 && Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
            {
                try
                {
                    _drain!();
                }
                finally
                {
                    Volatile.Write(ref _draining, 0);
                }
            }
        }

        public int GetReceiveLimit() => 1500;

        public int GetSendLimit() => Mtu;

        public int Receive(byte[] buf, int off, int len, int waitMillis) => Receive(buf.AsSpan(off, len), waitMillis);

        public void EnterRecordGate() => _recordGate.Enter();

        /// <summary>Lets application sends in again (the calling thread is done with the record it took, if any).</summary>
        public void ReleaseRecordGate()
        {
            if (_recordGate.IsHeldByCurrentThread) _recordGate.Exit();
        }

        public int Receive(Span<byte> buffer, int waitMillis)
        {
            ReleaseRecordGate();
            byte[]? datagram;
            try
            {
                // Read inline (after the handshake), a thread must not wait here: the queue is all there is.
                var wait = Volatile.Read(ref _drain) is null ? Math.Max(waitMillis, 0) : 0;
                if (!_queue.TryTake(out datagram, wait, _closed.Token)) return -1;
            }
            catch (OperationCanceledException)
            {
                throw new IOException("DTLS transport closed.");
            }

            // Held until this thread waits again or its DtlsTransport.Receive returns (see the class remarks).
            _recordGate.Enter();
            var n = Math.Min(datagram.Length, buffer.Length);
            datagram.AsSpan(0, n).CopyTo(buffer);
            return n;
        }

        public void Send(byte[] buf, int off, int len) => Send(buf.AsSpan(off, len));

        public void Send(ReadOnlySpan<byte> buffer)
        {
            if (_closed.IsCancellationRequested) throw new IOException("DTLS transport closed.");
            _path.Send(buffer, null!);
        }

        public void Close()
        {
            if (_closed.IsCancellationRequested) return;
            _closed.Cancel();
        }
    }
}
