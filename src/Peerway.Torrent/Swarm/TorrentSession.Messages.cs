using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Swarm;

/// <summary>Message handling: every method here runs under <c>_gate</c> unless it says otherwise.</summary>
public sealed partial class TorrentSession
{
    private readonly Dictionary<PeerConnection, List<(int Piece, PieceBuffer Data)>> _completedPieces = [];
    private PeerConnection?[]? _pieceOwner;
    private long[]? _pieceServed;
    private int _unownedPieces;

    /// <summary>Handles one frame (called by the connection's read loop, outside the lock).</summary>
    private PeerWireError HandleFrame(PeerConnection conn, ReadOnlySpan<byte> frame)
    {
        if (!PeerWire.TryDecode(frame, out var m, out var error)) return error;
        lock (_gate)
        {
            // A connection replaced by a duplicate's winner (see Register) is closing: its last frames change nothing.
            if (conn.Closing.IsCancellationRequested) return PeerWireError.None;
            return Handle(conn, m);
        }
    }

    private PeerWireError Handle(PeerConnection conn, PeerMessage m)
    {
        var count = _info?.PieceCount ?? -1;
        switch (m.Type)
        {
            case PeerMessageType.KeepAlive:
                return PeerWireError.None;
            case PeerMessageType.Choke:
                conn.PeerChoking = true;
                // BEP 3: a choke discards our pending requests; BEP 6: with the fast extension they are rejected explicitly.
                if (!conn.Fast) DropOutstanding(conn);
                return PeerWireError.None;
            case PeerMessageType.Unchoke:
                conn.PeerChoking = false;
                conn.LastBlockReceived = _time.GetUtcNow();
                RequestMore(conn);
                return PeerWireError.None;
            case PeerMessageType.Interested:
                conn.PeerInterested = true;
                // Fill a free upload slot at once rather than at the next 10 s round.
                if (conn.AmChoking && _connections.Count(c => !c.AmChoking) < _options.Choker.UploadSlots + 1) Rechoke();
                return PeerWireError.None;
            case PeerMessageType.NotInterested:
                conn.PeerInterested = false;
                // Its upload slot is free now (typically: it completed); give it to a peer that still wants data.
                if (!conn.AmChoking) Rechoke();
                return PeerWireError.None;
            case PeerMessageType.Have:
                if (count < 0)
                {
                    if (conn.EarlyHaves.Count < 100_000) conn.EarlyHaves.Add(m.Index);
                    return PeerWireError.None;
                }

                if (m.Index >= count) return PeerWireError.BadLength;
                conn.PeerHas ??= new Bitfield(count);
                if (conn.PeerHas.Set(m.Index)) _picker!.AddAvailability(m.Index);
                UpdateInterest(conn);
                return PeerWireError.None;
            case PeerMessageType.Bitfield:
                if (count < 0)
                {
                    conn.EarlyBitfield = m.Payload.ToArray();
                    return PeerWireError.None;
                }

                return SetBitfield(conn, m.Payload) ? PeerWireError.None : PeerWireError.BadLength;
            case PeerMessageType.HaveAll or PeerMessageType.HaveNone:
                // BEP 6: only valid when both sides set the fast bit.
                if (!conn.Fast) return PeerWireError.UnknownMessage;
                if (count < 0)
                {
                    conn.EarlyHaveAll = m.Type == PeerMessageType.HaveAll;
                    return PeerWireError.None;
                }

                if (conn.PeerHas is not null) _picker!.RemoveAvailability(conn.PeerHas);
                conn.PeerHas = new Bitfield(count);
                if (m.Type == PeerMessageType.HaveAll) conn.PeerHas.SetAll();
                _picker!.AddAvailability(conn.PeerHas);
                UpdateInterest(conn);
                return PeerWireError.None;
            case PeerMessageType.Request:
                return OnRequest(conn, new BlockRequest(m.Index, m.Begin, m.Length));
            case PeerMessageType.Cancel:
                OnCancel(conn, new BlockRequest(m.Index, m.Begin, m.Length));
                return PeerWireError.None;

            case PeerMessageType.Piece:
                OnBlock(conn, m.Index, m.Begin, m.Payload);
                return PeerWireError.None;
            case PeerMessageType.RejectRequest:
            {
                if (!conn.Fast) return PeerWireError.UnknownMessage;
                var r = new BlockRequest(m.Index, m.Begin, m.Length);
                if (conn.Outstanding.Remove(r))
                {
                    _picker?.OnRequestDropped(conn, r.Piece, r.Begin);
                    // Rejected while unchoked: this peer wants the piece fetched elsewhere (see SeedEachPieceOnceFirst).
                    if (!conn.PeerChoking && conn.RejectedPieces.Count < 4096) conn.RejectedPieces.Add(r.Piece);
                    conn.RefillPending = true;
                }

                return PeerWireError.None;
            }

            case PeerMessageType.AllowedFast:
                if (!conn.Fast) return PeerWireError.UnknownMessage;
                if (count >= 0 && m.Index < count && conn.AllowedFastFromPeer.Count < 64) conn.AllowedFastFromPeer.Add(m.Index);
                RequestMore(conn);
                return PeerWireError.None;
            case PeerMessageType.Suggest:
                return PeerWireError.None;
            case PeerMessageType.Port:
                if (m.Index != 0)
                {
                    var node = new IPEndPoint(conn.Remote.Address, m.Index);
                    _tasks.Add(Scheduler.RunAsync(() => DhtNodeSeen?.Invoke(node), CancellationToken.None));
                }

                return PeerWireError.None;
            case PeerMessageType.Extended:
                return OnExtended(conn, m.ExtendedId, m.Payload);
            default:
                return PeerWireError.UnknownMessage;
        }
    }

    private bool SetBitfield(PeerConnection conn, ReadOnlySpan<byte> bits)
    {
        if (!Bitfield.TryFromBytes(bits, _info!.PieceCount, out var has)) return false;
        if (conn.PeerHas is not null) _picker!.RemoveAvailability(conn.PeerHas);
        conn.PeerHas = has;
        _picker!.AddAvailability(has!);
        UpdateInterest(conn);
        return true;
    }

    /// <summary>Availability announced before we had the metadata (magnet), applied once we have it.</summary>
    private void AdoptEarlyAvailability(PeerConnection conn)
    {
        var count = _info!.PieceCount;
        if (conn.EarlyHaveAll)
        {
            conn.PeerHas = new Bitfield(count);
            conn.PeerHas.SetAll();
            _picker!.AddAvailability(conn.PeerHas);
        }
        else if (conn.EarlyBitfield is not null)
        {
            if (!SetBitfield(conn, conn.EarlyBitfield))
            {
                conn.Close();
                return;
            }
        }

        foreach (var h in conn.EarlyHaves.Where(h => h < count))
        {
            conn.PeerHas ??= new Bitfield(count);
            if (conn.PeerHas.Set(h)) _picker!.AddAvailability(h);
        }

        conn.EarlyBitfield = null;
        conn.EarlyHaves.Clear();
        // We could not send a bitfield before the metadata: announce what a previous run left on disk with HAVE.
        foreach (var p in _have!.SetIndices()) conn.Send(w => PeerWire.WriteIndex(w, PeerMessageType.Have, p));
        if (conn.Fast) GrantAllowedFast(conn);
        UpdateInterest(conn);
    }

    private void UpdateInterest(PeerConnection conn)
    {
        if (_picker is null || conn.PeerHas is null) return;
        var interested = !_picker.IsDone && _picker.IsInteresting(conn.PeerHas);
        if (interested == conn.AmInterested) return;
        conn.AmInterested = interested;
        conn.Send(w => PeerWire.WriteSimple(w, interested ? PeerMessageType.Interested : PeerMessageType.NotInterested));
        if (interested)
        {
            conn.LastBlockReceived = _time.GetUtcNow();
            RequestMore(conn);
        }
    }

    private PeerWireError OnRequest(PeerConnection conn, BlockRequest r)
    {
        if (_info is null || r.Piece >= _info.PieceCount) return PeerWireError.BadRequest;
        if (r.Begin < 0 || (long)r.Begin + r.Length > _info.PieceSize(r.Piece)) return PeerWireError.BadRequest;
        // The same block asked again while still queued: the one PIECE we will send answers both (sending it twice
        // would spend the upload cap on a copy, and queueing it twice would count it twice against reqq).
        if (conn.IncomingRequests.Contains(r)) return PeerWireError.None;
        var allowed = (!conn.AmChoking || (conn.Fast && conn.AllowedFastToPeer.Contains(r.Piece))) && _have![r.Piece] &&
                      conn.IncomingRequests.Count < _options.MaxIncomingRequests && ClaimForSeeding(conn, r.Piece);
        if (!allowed)
        {
            if (conn.Fast) conn.Send(w => PeerWire.WriteBlockMessage(w, PeerMessageType.RejectRequest, r.Piece, r.Begin, r.Length));
            return PeerWireError.None;
        }

        conn.IncomingRequests.Enqueue(r);
        return PeerWireError.None;
    }

    /// <summary>
    /// BEP 6: with the fast extension "every request is guaranteed to result in EXACTLY ONE response which is either the
    /// corresponding reject or corresponding piece message. Even when a request is cancelled, the peer receiving the
    /// cancel should respond with either the corresponding reject or the corresponding piece". A block still queued is
    /// dropped and rejected; one already handed to the socket is its own answer. libtorrent keeps a cancelled block in
    /// its download queue until that answer comes, so without the REJECT a streaming client (which cancels whatever is
    /// late for a piece deadline) fills its queue with blocks it no longer wants and stops requesting.
    /// </summary>
    private static void OnCancel(PeerConnection conn, BlockRequest r)
    {
        if (conn.IncomingRequests.Remove(r) && conn.Fast)
        {
            conn.Send(w => PeerWire.WriteBlockMessage(w, PeerMessageType.RejectRequest, r.Piece, r.Begin, r.Length));
        }
    }

    /// <summary>
    /// <see cref="TorrentSessionOptions.SeedEachPieceOnceFirst"/>: whether <paramref name="conn"/> may have this piece
    /// from us now. The first peer to ask for a piece owns it until it has been sent whole (or the peer leaves).
    /// </summary>
    private bool ClaimForSeeding(PeerConnection conn, int piece)
    {
        if (!_options.SeedEachPieceOnceFirst || !conn.Fast || !_have!.IsComplete) return true;
        if (_pieceOwner is null)
        {
            _pieceOwner = new PeerConnection?[_info!.PieceCount];
            _pieceServed = new long[_info.PieceCount];
            _unownedPieces = _info.PieceCount;
        }

        var owner = _pieceOwner[piece];
        if (owner is null)
        {
            _pieceOwner[piece] = conn;
            _unownedPieces--;
            return true;
        }

        return ReferenceEquals(owner, conn) || _unownedPieces == 0;
    }

    /// <summary>A peer left or was choked: the pieces it owned but had not been sent whole go back to the pool.</summary>
    private void ReleaseSeedingClaims(PeerConnection conn)
    {
        if (_pieceOwner is null) return;
        for (var p = 0; p < _pieceOwner.Length; p++)
        {
            if (!ReferenceEquals(_pieceOwner[p], conn) || _pieceServed![p] >= _info!.PieceSize(p)) continue;
            _pieceOwner[p] = null;
            _pieceServed[p] = 0;
            _unownedPieces++;
        }
    }

    private void OnBlock(PeerConnection conn, int piece, int begin, ReadOnlySpan<byte> data)
    {
        if (_info is null || _picker is null) return;
        var r = new BlockRequest(piece, begin, data.Length);
        if (!conn.Outstanding.Remove(r)) return; // Unrequested or already cancelled: ignore.
        conn.LastBlockReceived = _time.GetUtcNow();
        conn.DownloadMeter.Add(data.Length);
        conn.BytesReceived += data.Length;
        if (!_picker.OnBlockReceived(conn, piece, begin, out var cancelAt, out var complete)) return;
        _downloaded += data.Length;
        _receivedByPeerId[conn.PeerId] = _receivedByPeerId.GetValueOrDefault(conn.PeerId) + data.Length;
        if (!_pieceBuffers.TryGetValue(piece, out var buffer))
        {
            buffer = _shared.Disk.Buffers.Rent(_info.PieceSize(piece));
            _pieceBuffers[piece] = buffer;
        }

        data.CopyTo(buffer.Span(_info.PieceSize(piece))[begin..]);
        // Endgame: the same block was asked of others; cancel it there.
        for (var i = 0; i < cancelAt.Count; i++)
        {
            // Web seeds take part in the endgame too; only peers are sent a CANCEL.
            if (cancelAt[i] is not PeerConnection other) continue;
            if (other.Outstanding.Remove(r)) other.Send(w => PeerWire.WriteBlockMessage(w, PeerMessageType.Cancel, r.Piece, r.Begin, r.Length));
        }

        if (complete)
        {
            _pieceBuffers.Remove(piece);
            if (!_completedPieces.TryGetValue(conn, out var list)) _completedPieces[conn] = list = [];
            list.Add((piece, buffer));
        }

        // Refilled once per read batch (AfterBatch), so a batch of blocks costs one batch of requests, not one each.
        conn.RefillPending = true;
    }

    private void DropOutstanding(PeerConnection conn)
    {
        foreach (var r in conn.Outstanding) _picker?.OnRequestDropped(conn, r.Piece, r.Begin);
        conn.Outstanding.Clear();
    }

    /// <summary>Asks the peer for more blocks, up to its adaptive queue depth.</summary>
    private void RequestMore(PeerConnection conn)
    {
        if (_picker is null || conn.PeerHas is null || !conn.AmInterested || conn.IsClosed || _picker.IsDone) return;
        IReadOnlySet<int>? allowed = null;
        if (conn.PeerChoking)
        {
            if (!conn.Fast || conn.AllowedFastFromPeer.Count == 0) return;
            allowed = conn.AllowedFastFromPeer;
        }

        // Anti-snubbing: a peer that stopped sending gets one request at a time.
        var depth = _choker.IsSnubbed(conn) ? 1 : conn.QueueDepth;
        var want = depth - conn.Outstanding.Count;
        if (want <= 0) return;
        var picks = _picker.Pick(conn, conn.PeerHas, want, allowed, conn.RejectedPieces);
        if (picks.Count == 0) return;
        foreach (var p in picks) conn.Outstanding.Add(p);
        conn.Send(w =>
        {
            foreach (var p in picks) PeerWire.WriteBlockMessage(w, PeerMessageType.Request, p.Piece, p.Begin, p.Length);
        });
    }

    /// <summary>
    /// After a batch of frames from one peer (outside the lock): refill its request queue, hand complete pieces to the
    /// disk queue (waiting when it is <see cref="DiskQueue.Capacity"/> pieces behind: back-pressure on this connection),
    /// and serve its requests.
    /// </summary>
    private async ValueTask AfterBatchAsync(PeerConnection conn)
    {
        List<(int Piece, PieceBuffer Data)>? done;
        List<BlockRequest>? serve = null;
        ITorrentStorage? storage;
        var requestsWaiting = false;
        long received;
        lock (_gate)
        {
            received = conn.BytesReceived - conn.BytesThrottled;
            conn.BytesThrottled = conn.BytesReceived;
            _completedPieces.Remove(conn, out done);
            storage = _storage;
            if (conn.RefillPending)
            {
                conn.RefillPending = false;
                RequestMore(conn);
            }

            // With an upload cap, requests wait in the queue and the timer serves them within the budget.
            if (conn.IncomingRequests.Count > 0 && storage is not null)
            {
                if (_uploadBucket is null)
                {
                    serve = new List<BlockRequest>(conn.IncomingRequests.Count);
                    foreach (var r in conn.IncomingRequests) serve.Add(r);
                    conn.IncomingRequests.Clear();
                }
                else
                {
                    requestsWaiting = true;
                }
            }
        }

        if (done is not null) await EnqueueCompletePiecesAsync(done).ConfigureAwait(false);

        if (_info is null)
        {
            lock (_gate) TryFinishMetadata();
        }

        if (serve is not null) Serve(conn, storage!, serve);
        if (requestsWaiting) RequestsWaiting?.Invoke();
        // The client's download cap: this connection's next read waits until the bucket has paid for this batch.
        if (_shared.Download is { } download) await download.ConsumeAsync(received, _cts.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// Called by the disk queue for each complete piece (outside the lock): hashes it and writes it only if its SHA-1
    /// matches (BEP 3: no unverified byte is stored). Pieces of one torrent are checked in arrival order.
    /// </summary>
    internal void VerifyAndStore(int piece, PieceBuffer data)
    {
        bool? ok;
        try
        {
            // A piece counts only once its SHA-1 verifies; only then is it written (no unverified byte on disk).
            ok = _storage!.TryWriteVerifiedPiece(piece, data.Span(_info!.PieceSize(piece)));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.LogError("cannot write piece {Piece}: {Message}", piece, ex.Message);
            ok = null;
        }

        lock (_gate)
        {
            if (ok is { } verified)
            {
                OnPieceChecked(piece, verified);
            }
            else
            {
                // Not the peers' fault: fetch the piece again without blaming anyone.
                _picker!.OnPieceFailed(piece);
                foreach (var c in _connections) RequestMore(c);
            }
        }

        if (ok == true) PieceVerified?.Invoke(piece);
    }

    /// <summary>The disk queue is done with one of our pieces.</summary>
    internal void DiskItemDone()
    {
        if (Interlocked.Decrement(ref _diskQueued) == 0 && Volatile.Read(ref _disposed) != 0) _diskDrained.TrySetResult();
    }

    /// <summary>Sends blocks (outside the lock: disk reads) and accounts for them.</summary>
    private void Serve(PeerConnection conn, ITorrentStorage storage, List<BlockRequest> serve)
    {
        var count = conn.SendBlocks(storage, serve);
        long sent = 0;
        for (var i = 0; i < count; i++)
        {
            sent += serve[i].Length;
            BlockUploaded?.Invoke(conn.PeerId, serve[i]);
        }

        lock (_gate)
        {
            if (_pieceServed is not null)
            {
                for (var i = 0; i < count; i++) _pieceServed[serve[i].Piece] += serve[i].Length;
            }

            conn.UploadMeter.Add(sent);
            conn.BytesSent += sent;
            _uploaded += sent;
        }
    }

    /// <summary>
    /// Upload cap (token bucket, shared by the client's torrents): each tick refills the bucket and serves queued
    /// requests round-robin across peers while it has tokens. Called from the timer, outside the lock.
    /// </summary>
    private void ServeRateLimited()
    {
        if (_uploadBucket is not { } bucket || _storage is not { } storage) return;
        bucket.Refill();
        var work = new List<(PeerConnection Conn, List<BlockRequest> Blocks)>();
        lock (_gate)
        {
            var queues = _connections.Where(c => c.IncomingRequests.Count > 0).ToList();
            var progress = true;
            var picked = queues.ToDictionary(c => c, _ => new List<BlockRequest>());
            while (progress && bucket.HasTokens)
            {
                progress = false;
                foreach (var c in queues)
                {
                    if (c.IncomingRequests.Count == 0 || !bucket.TryTake(c.IncomingRequests.Peek().Length)) continue;
                    var r = c.IncomingRequests.Dequeue();
                    picked[c].Add(r);
                    progress = true;
                }
            }

            work.AddRange(picked.Where(kv => kv.Value.Count > 0).Select(kv => (kv.Key, kv.Value)));
        }

        foreach (var (conn, blocks) in work) Serve(conn, storage, blocks);
    }

    private void OnPieceChecked(int piece, bool ok)
    {
        if (ok)
        {
            _picker!.OnPieceVerified(piece);
            OnStreamPieceVerifiedLocked(piece);
            foreach (var c in _connections)
            {
                c.Send(w => PeerWire.WriteIndex(w, PeerMessageType.Have, piece));
                UpdateInterest(c);
            }

            // Complete once every wanted piece is (with file priorities, the selected files; see FilePriorities).
            if (_picker.IsDone && !_completed.Task.IsCompleted)
            {
                _log.LogInformation("download complete: {Name}", _info!.Name);
                foreach (var c in _connections) DropOutstanding(c);
                // Seeding now: slots go by upload rate, to peers still interested, at once rather than at the next round.
                Rechoke();
                _tasks.Add(Scheduler.RunAsync(() =>
                {
                    SaveResumeSafely();
                    _completed.TrySetResult();
                }, CancellationToken.None));
            }

            return;
        }

        _hashFailures++;
        var sources = _picker!.Contributors(piece);
        var contributors = sources.OfType<PeerConnection>().ToList();
        _picker.OnPieceFailed(piece);
        BlameWebSeedsLocked(sources, piece);
        foreach (var c in contributors)
        {
            c.HashFailures++;
            // A strike per failed piece a peer contributed to, banned at BanAfterHashFailures, even for a piece it sent
            // alone: one bad piece is no proof of a lying peer (a bit flipped on the path, a glitch on its disk), and
            // banning the only seeder for it stalled the download for good (libtorrent bans on repeated failures too:
            // each costs trust points, and a peer is banned once they fall low enough). The strikes outlive the
            // connection, so a liar gains nothing by reconnecting.
            var strikes = _hashStrikes[c.PeerId] = _hashStrikes.GetValueOrDefault(c.PeerId) + 1;
            if (strikes >= _options.BanAfterHashFailures) Ban(c, $"piece {piece} failed its hash check ({strikes} failed pieces from it)");
            else _log.LogInformation("piece {Piece} from {Peer} failed its hash check; it is fetched again", piece, c);
        }

        foreach (var c in _connections) RequestMore(c);
    }

    private PeerWireError OnExtended(PeerConnection conn, byte id, ReadOnlySpan<byte> payload)
    {
        if (id == ExtendedHandshake.HandshakeId)
        {
            if (!ExtendedHandshake.TryDecode(payload, out var hs, out var error)) return error;
            conn.Extended = hs;
            // A WebRTC peer's "p" is no dialable TCP port: it gets no listen endpoint, so PEX never gives it out.
            if (hs!.ListenPort is { } port && conn.Kind != StreamTransportKind.WebRtc) conn.ListenEndPoint = new IPEndPoint(conn.Remote.Address, port);
            if (IsBanned(conn))
            {
                conn.Close();
                return PeerWireError.None;
            }

            if (hs.RequestQueue is { } reqq) conn.QueueDepth = Math.Min(conn.QueueDepth, reqq);
            if (_info is null) RequestMetadata(conn);
            return PeerWireError.None;
        }

        if (id == ExtendedHandshake.UtMetadataId)
        {
            if (!MetadataMessage.TryDecode(payload, out var mm, out var error)) return error;
            OnMetadataMessage(conn, mm);
            return PeerWireError.None;
        }

        if (id == ExtendedHandshake.UtPexId)
        {
            if (IsPrivate) return PeerWireError.None;
            if (!PexMessage.TryDecode(payload, out var pex, out var error)) return error;
            AddPeersLocked(pex!.Added);
            NoteIntroducedLocked(conn, pex.Added);
            return PeerWireError.None;
        }

        if (id == ExtendedHandshake.UtHolepunchId) return OnHolepunchLocked(conn, payload);

        return PeerWireError.None; // BEP 10: unknown extension messages are ignored.
    }

    private void AddPeersLocked(IEnumerable<IPEndPoint> peers)
    {
        var now = _time.GetUtcNow();
        foreach (var p in peers)
        {
            if (p.Port == 0 || _bannedEndPoints.Contains(p) || InBackOffLocked(p, now) || IsConnectedTo(p)) continue;
            if (p.Port == ListenPort && IPAddress.IsLoopback(p.Address)) continue;
            _candidates.Add(p);
            _shared.Ticker.Wake();
        }
    }

    // BEP 9: ut_metadata ------------------------------------------------------------------------------------------

    private void OnMetadataMessage(PeerConnection conn, MetadataMessage m)
    {
        var theirId = conn.Extended?.ExtensionId("ut_metadata") ?? 0;
        switch (m.Type)
        {
            case MetadataMessageType.Request:
            {
                if (theirId == 0) return;
                var raw = _info?.RawInfo;
                var pieces = raw is null ? 0 : (raw.Value.Length + MetadataMessage.PieceLength - 1) / MetadataMessage.PieceLength;
                byte[] reply;
                if (raw is null || m.Piece >= pieces || IsPrivate)
                {
                    reply = MetadataMessage.Encode(MetadataMessageType.Reject, m.Piece);
                }
                else
                {
                    var start = m.Piece * MetadataMessage.PieceLength;
                    var slice = raw.Value.Span.Slice(start, Math.Min(MetadataMessage.PieceLength, raw.Value.Length - start));
                    reply = MetadataMessage.Encode(MetadataMessageType.Data, m.Piece, raw.Value.Length, slice);
                }

                conn.Send(w => PeerWire.WriteExtended(w, theirId, reply));
                return;
            }

            case MetadataMessageType.Data:
            {
                if (_info is not null || _metadataBuffer is null || m.TotalSize != _metadataBuffer.Length) return;
                var pieces = _metadataHave!.Length;
                if (m.Piece >= pieces) return;
                var start = m.Piece * MetadataMessage.PieceLength;
                var expected = Math.Min(MetadataMessage.PieceLength, _metadataBuffer.Length - start);
                if (m.Data.Length != expected) return;
                m.Data.CopyTo(_metadataBuffer.AsSpan(start));
                _metadataHave[m.Piece] = true;
                return;
            }

            default:
                conn.MetadataRequested = false;
                conn.Extended = conn.Extended! with { MetadataSize = null };
                return;
        }
    }

    private void RequestMetadata(PeerConnection conn)
    {
        if (_info is not null || conn.MetadataRequested || conn.Extended is not { MetadataSize: { } size } ext) return;
        var theirId = ext.ExtensionId("ut_metadata");
        if (theirId == 0) return;
        if (_metadataBuffer is null || _metadataBuffer.Length != size)
        {
            if (_metadataBuffer is not null && _metadataHave!.Any(h => h)) return; // Another peer's size is in progress.
            _metadataBuffer = new byte[size];
            _metadataHave = new bool[(size + MetadataMessage.PieceLength - 1) / MetadataMessage.PieceLength];
        }

        conn.MetadataRequested = true;
        var missing = Enumerable.Range(0, _metadataHave!.Length).Where(i => !_metadataHave[i]).ToList();
        conn.Send(w =>
        {
            foreach (var piece in missing) PeerWire.WriteExtended(w, theirId, MetadataMessage.Encode(MetadataMessageType.Request, piece));
        });
    }

    private void TryFinishMetadata()
    {
        if (_info is not null || _metadataHave is null || !_metadataHave.All(h => h) || Interlocked.Exchange(ref _initializing, 1) != 0) return;
        // BEP 9: verify the assembled info dictionary against the info-hash before using it.
        if (!MetainfoParser.TryParseInfo(_metadataBuffer, InfoHash, out var info, out var error))
        {
            _log.LogWarning("metadata rejected: {Error}", error.Describe());
            _metadataBuffer = null;
            _metadataHave = null;
            foreach (var c in _connections) c.MetadataRequested = false;
            _initializing = 0;
            return;
        }

        _tasks.Add(Scheduler.RunAsync(() =>
        {
            try
            {
                InitializeStorage(info!, _cts.Token);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or OperationCanceledException)
            {
                _log.LogError("cannot open storage: {Message}", ex.Message);
                _metadata.TrySetException(ex);
                _completed.TrySetException(ex);
            }
        }, CancellationToken.None));
    }
}
