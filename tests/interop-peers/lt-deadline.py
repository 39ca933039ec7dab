#!/usr/bin/python3
"""A streaming libtorrent 2.0 client (piece deadlines, as video players and qBittorrent's sequential mode set them) against
`peerway share`, from issue 23's repro (../shared/repro/lt_deadline_stall.py), for tests/Peerway.Interop.Tests.

  lt-deadline.py PORT LIMIT_KIB MODE [TIMEOUT_S]
    PORT       `peerway share --port PORT` (libtorrent itself listens on an ephemeral port of 127.0.0.1)
    LIMIT_KIB  `--upload-limit LIMIT_KIB`; 0: no cap
    MODE       plain    -> libtorrent downloads normally
               deadline -> libtorrent calls set_piece_deadline on the next 8 missing pieces every 0.2 s
    TIMEOUT_S  how long libtorrent may take (default 60)

Runs `$PEERWAY share` (default ./peerway) on a fresh 4 MiB random file, then prints one line and exits 0 when the
download completed, 1 when it did not:
  result mode=M limit=L done=0|1 progress=P seconds=S bytes=B metadata=S first_piece=S piece0=S in_order=F cancels=N
seconds: from connect to completion (or the timeout); metadata: when the info dictionary arrived (BEP 9), after which the
first deadlines are set; first_piece: the first piece to complete; piece0: piece 0 (the one a player wants first);
in_order: the fraction of pieces completed in ascending order of index; cancels: CANCEL messages libtorrent sent.
The loop is the repro's (status, deadlines, 0.2 s apart): against the seeder before the fix it stalled in 3 runs of 3
(libtorrent cancelled 18-26 blocks each time), while a variant that set the first deadlines sooner often saw no cancel.
"""
import os, signal, subprocess, sys, tempfile, time
import libtorrent as lt
PW = os.environ.get('PEERWAY', './peerway'); PORT = int(sys.argv[1]); LIMIT = sys.argv[2]; MODE = sys.argv[3]
TIMEOUT = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
tmp = tempfile.mkdtemp(prefix='pw-deadline-')
f = os.path.join(tmp, 'v.bin'); open(f, 'wb').write(os.urandom(4 << 20))
args = [PW, 'share', f, '--port', str(PORT)] + (['--upload-limit', LIMIT] if LIMIT != '0' else [])
p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    mag = p.stdout.readline().strip()
    s = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                    "enable_upnp": False, "enable_natpmp": False, "allow_multiple_connections_per_ip": True,
                    "enable_outgoing_utp": False, "enable_incoming_utp": False, "out_enc_policy": lt.enc_policy.disabled,
                    "alert_mask": lt.alert.category_t.piece_progress_notification | lt.alert.category_t.status_notification
                                  | lt.alert.category_t.stats_notification})
    atp = lt.parse_magnet_uri(mag); atp.save_path = os.path.join(tmp, 'dl')
    h = s.add_torrent(atp); h.connect_peer(("127.0.0.1", PORT))
    t0 = time.time(); metadata = first_piece = piece0 = None; order = []

    def wait(seconds):
        """The repro's time.sleep(0.2), spent collecting alerts so that completions are timed to the millisecond."""
        global metadata, first_piece, piece0
        until = time.time() + seconds
        while (left := until - time.time()) > 0:
            s.wait_for_alert(max(1, int(left * 1000)))
            for a in s.pop_alerts():
                now = time.time() - t0
                if isinstance(a, lt.piece_finished_alert):
                    order.append(int(a.piece_index))
                    if first_piece is None: first_piece = now
                    if int(a.piece_index) == 0: piece0 = now
                elif isinstance(a, lt.metadata_received_alert) and metadata is None:
                    metadata = now

    # The repro's loop, unchanged: status, deadlines on the next 8 missing pieces, 0.2 s.
    while time.time() - t0 < TIMEOUT:
        st = h.status()
        if st.is_seeding: break
        if MODE == 'deadline' and st.has_metadata:
            n = h.torrent_file().num_pieces(); have = st.pieces
            for k, i in enumerate([i for i in range(n) if not have[i]][:8]): h.set_piece_deadline(i, 100 * (k + 1))
        wait(0.2)
    st = h.status(); elapsed = time.time() - t0
    # CANCELs sent, from libtorrent's session counters (peer logging would slow it down and change its timing; its
    # ses.num_incoming_reject counter stays 0 in 2.0.8 even when REJECT_REQUEST arrives, so rejects are not reported).
    s.post_session_stats(); cancels = None
    until = time.time() + 5
    while cancels is None and time.time() < until:
        s.wait_for_alert(500)
        for a in s.pop_alerts():
            if isinstance(a, lt.session_stats_alert): cancels = a.values["ses.num_outgoing_cancel"]
    in_order = sum(1 for a, b in zip(order, order[1:]) if b > a) / max(1, len(order) - 1)
    fmt = lambda v: 'none' if v is None else '%.2f' % v
    print(f"result mode={MODE} limit={LIMIT} done={int(st.is_seeding)} progress={st.progress:.2f} seconds={elapsed:.2f} "
          f"bytes={st.total_wanted_done} metadata={fmt(metadata)} first_piece={fmt(first_piece)} piece0={fmt(piece0)} in_order={in_order:.2f} "
          f"cancels={cancels}", flush=True)
finally:
    p.send_signal(signal.SIGINT)
    try: p.wait(10)
    except subprocess.TimeoutExpired: p.kill(); p.wait()
    subprocess.run(['rm', '-rf', tmp])
sys.exit(0 if st.is_seeding else 1)
