#!/usr/bin/python3
"""One libtorrent 2.0 peer for bench/torrent/throughput.sh: a seeder (runs until killed) or a leecher (exits 0 once the
whole torrent is downloaded and verified).

Usage: lt_peer.py seed|leech TORRENT SAVE_DIR LISTEN_IP PORT plain|rc4

Tuned for a fast LAN as libtorrent's own tuning guide advises (tuning-ref.html: "high performance seeding", "send
buffer watermark"), not defaults: the high_performance_seed() settings pack on both sides (send buffer watermark
3 MiB, low watermark 1 MiB, watermark factor 150 %, max_out_request_queue 1500, max_queued_disk_bytes 7 MiB,
max_peer_recv_buffer_size 5 MiB, 8 disk threads, suggest mode, no unchoke slot limit), plus hashing_threads 2 (this
machine has two cores). libtorrent 2.0 has no disk-cache size setting any more: it reads and writes through mmap and
the page cache. DHT, LSD, UPnP, NAT-PMP and uTP are off (plain TCP to the tracker's peer only, as for every pair).
"rc4" forces MSE/PE with RC4 both ways (in/out_enc_policy pe_forced, allowed_enc_level rc4, prefer_rc4); "plain"
disables it (pe_disabled both ways).
"""
import sys

import libtorrent as lt


def main() -> int:
    if len(sys.argv) != 7 or sys.argv[1] not in ("seed", "leech") or sys.argv[6] not in ("plain", "rc4"):
        print("usage: lt_peer.py seed|leech TORRENT SAVE_DIR LISTEN_IP PORT plain|rc4", file=sys.stderr)
        return 2
    mode, torrent, save, ip, port, enc = sys.argv[1:]
    settings = lt.high_performance_seed()
    settings.update({
        "listen_interfaces": f"{ip}:{port}",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "hashing_threads": 2,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
    })
    if enc == "rc4":
        settings.update({"out_enc_policy": int(lt.enc_policy.pe_forced), "in_enc_policy": int(lt.enc_policy.pe_forced),
                         "allowed_enc_level": int(lt.enc_level.rc4), "prefer_rc4": True})
    else:
        settings.update({"out_enc_policy": int(lt.enc_policy.pe_disabled),
                         "in_enc_policy": int(lt.enc_policy.pe_disabled)})
    session = lt.session(settings)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save
    handle = session.add_torrent(params)
    if mode == "leech" and handle.status().is_seeding:
        return 0
    while True:
        session.wait_for_alert(1000)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.torrent_error_alert):
                print(f"lt_peer.py: {alert.message()}", file=sys.stderr)
                return 1
            # torrent_finished_alert: every piece is downloaded and passed its hash check.
            if mode == "leech" and isinstance(alert, lt.torrent_finished_alert):
                return 0


if __name__ == "__main__":
    sys.exit(main())
