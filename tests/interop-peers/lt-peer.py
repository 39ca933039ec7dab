#!/usr/bin/python3
"""libtorrent-rasterbar 2.0 (Debian's python3-libtorrent) driven for Peerway's interop tests.

  lt-peer.py probe                                   exit 0 when `import libtorrent` works (test.sh, the tests)
  lt-peer.py create SRC OUT [--v1-only|--v2-only] [--piece-size N] [--web-seed URL]...
                                                     writes a .torrent; prints "v1 <hex>" / "v2 <hex>"
  lt-peer.py run --listen IP:PORT [--torrent F | --magnet URI] --save DIR [--peer IP:PORT]...
                 [--dht-bootstrap IP:PORT]... [--dht-get-peers HEX]
                 [--enc enabled|forced|disabled] [--enc-level both|rc4|plaintext] [--defaults] [--utp-only] [--reconnect S] [--lsd]
                 [--exit-when-complete] [--timeout S]

`run` prints one event per line on stdout (flushed): "listening PORT", "metadata <name>", "peer <ip:port> <flags>",
"finished", "mse-attempt <ip:port>" (an encrypted handshake begun), "mse-select <ip:port> rc4|plaintext" (the method
an MSE handshake settled on), "connect <ip:port> TCP|uTP" (an outgoing connection
begun), "connect-failed <ip:port> <error>", "wire <ip:port> <event>" (what a peer sent), "dht-nodes N",
"dht-peers <ip:port> ...", and "alert <message>" for errors on stderr. It exits 0 on
--exit-when-complete, 3 when --timeout (default 120 s) passes: a hard limit so a test never leaves it behind.
Everything stays on the addresses given: LSD (unless --lsd: BEP 14 multicast, for tests in namespaces), UPnP, NAT-PMP
and (unless bootstrap nodes are given) the DHT are off.
uTP is off too, unless --defaults leaves it (and every setting not named above) at libtorrent's default, as a user of
qBittorrent or Deluge meets it; --utp-only turns uTP on and TCP off both ways (BEP 29 interop). --reconnect S calls connect_peer for every --peer again every S seconds, as a script would.
"""
import re
import argparse
import os
import signal
import sys
import time

import libtorrent as lt


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def create(args):
    fs = lt.file_storage()
    lt.add_files(fs, os.path.abspath(args.src))
    flags = 0
    if args.v1_only:
        flags |= lt.create_torrent.v1_only
    if args.v2_only:
        flags |= lt.create_torrent.v2_only
    ct = lt.create_torrent(fs, args.piece_size, flags=flags)
    ct.set_creator("libtorrent " + lt.__version__)
    for url in args.web_seed:
        ct.add_url_seed(url)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(args.src)))
    data = lt.bencode(ct.generate())
    with open(args.out, "wb") as f:
        f.write(data)
    ti = lt.torrent_info(args.out)
    hashes = ti.info_hashes()
    if hashes.has_v1():
        out("v1 " + str(hashes.v1))
    if hashes.has_v2():
        out("v2 " + str(hashes.v2))
    return 0


# peer_info::utp_socket (libtorrent 2.0 peer_info.hpp: 17_bit) is not exported by the Python bindings.
UTP_SOCKET = 1 << 17


def flag_names(peer):
    names = []
    for name in ("rc4_encrypted", "plaintext_encrypted", "supports_extensions", "seed", "outgoing_connection"):
        if peer.flags & getattr(lt.peer_info, name):
            names.append(name)
    if peer.flags & UTP_SOCKET:
        names.append("utp_socket")
    if peer.source & lt.peer_info.pex:
        names.append("source_pex")
    if peer.source & lt.peer_info.dht:
        names.append("source_dht")
    return names


def report_peers(handle, seen_peers):
    if handle is None:
        return
    for p in handle.get_peer_info():
        key = "%s:%d" % p.ip
        flags = flag_names(p)
        client = p.client.decode("utf-8", "replace") if isinstance(p.client, bytes) else p.client
        if seen_peers.get(key) != (flags, client):
            seen_peers[key] = (flags, client)
            out("peer %s %s client=%s" % (key, ",".join(flags) or "-", client.replace(" ", "_")))


def finish(handle, finishing):
    """Asks libtorrent to flush the torrent's disk cache (once); "finished" is printed when that is done."""
    if not finishing:
        handle.save_resume_data(lt.save_resume_flags_t.flush_disk_cache)
    return True


def run(args):
    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
    signal.alarm(args.timeout)
    enc = {"enabled": lt.enc_policy.enabled, "forced": lt.enc_policy.forced, "disabled": lt.enc_policy.disabled}[args.enc]
    level = {"both": lt.enc_level.both, "rc4": lt.enc_level.rc4, "plaintext": lt.enc_level.plaintext}[args.enc_level]
    settings = {
        "listen_interfaces": args.listen,
        "enable_lsd": args.lsd,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "enable_dht": bool(args.dht_bootstrap),
        "dht_bootstrap_nodes": ",".join(args.dht_bootstrap),
        "out_enc_policy": enc,
        "in_enc_policy": enc,
        "allowed_enc_level": level,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.all_categories,
        "user_agent": "lt-peer/" + lt.__version__,
    }
    if args.dht_bootstrap:
        # The test network is tiny and private: accept nodes on one IP, and many nodes per subnet.
        settings.update({"dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
                         "dht_ignore_dark_internet": False, "dht_enforce_node_id": False, "dht_prefer_verified_node_ids": False})
    if args.defaults:
        for name in ("enable_incoming_utp", "enable_outgoing_utp"):
            del settings[name]
    if args.utp_only:
        settings.update({"enable_incoming_utp": True, "enable_outgoing_utp": True,
                         "enable_incoming_tcp": False, "enable_outgoing_tcp": False})
    ses = lt.session(settings)
    handle = None
    if args.torrent or args.magnet:
        atp = lt.load_torrent_file(args.torrent) if args.torrent else lt.parse_magnet_uri(args.magnet)
        atp.save_path = args.save
        if not args.dht_bootstrap:
            atp.flags |= lt.torrent_flags.disable_dht
        if not args.lsd:
            atp.flags |= lt.torrent_flags.disable_lsd
        # BEP 19 web seeds are not used here: a test's peers hold exactly what it gives them.
        atp.url_seeds = []
        handle = ses.add_torrent(atp)

    seen_peers = {}
    block_from = False
    last_force = 0.0
    dht_nodes = 0
    last_poll = 0.0
    last_lookup = 0.0
    last_reconnect = time.monotonic()
    finished = False
    finishing = False
    while True:
        ses.wait_for_alert(250)
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_succeeded_alert) and a.socket_type == lt.socket_type_t.tcp:
                out("listening %d" % a.port)
                if handle is not None:
                    for p in args.peer:
                        handle.connect_peer(endpoint(p))
            elif isinstance(a, lt.listen_failed_alert):
                out("alert " + a.message())
            elif isinstance(a, lt.state_changed_alert):
                out("state %s" % a.state)
            elif isinstance(a, lt.metadata_received_alert):
                out("metadata " + a.handle.torrent_file().name())
            elif isinstance(a, (lt.torrent_finished_alert,)):
                finishing = finish(a.handle, finishing)
            elif isinstance(a, (lt.save_resume_data_alert, lt.save_resume_data_failed_alert)):
                # "finished" only once the disk cache is flushed: libtorrent reports a torrent finished when every piece
                # has passed its hash check, which can be before the last blocks are written to the file.
                if finishing and not finished:
                    finished = True
                    out("finished")
            elif isinstance(a, lt.dht_stats_alert):
                nodes = sum(b["num_nodes"] for b in a.routing_table)
                if nodes != dht_nodes:
                    dht_nodes = nodes
                    out("dht-nodes %d" % nodes)
            elif isinstance(a, lt.dht_announce_alert):
                out("dht-announce-from %s:%d" % (a.ip, a.port))
            elif isinstance(a, lt.dht_reply_alert):
                out("dht-reply %d" % a.num_peers)
            elif isinstance(a, lt.peer_log_alert):
                # libtorrent's encryption policy "enabled" (the default) opens with an MSE handshake (DH key exchange)
                # and, when the peer closes on it, retries in plaintext.
                message = a.message()
                if "INCOMING_CONNECTION" in message or "INCOMING CONNECTION" in message:
                    out("incoming %s:%d" % a.ip)
                if "initiating encrypted handshake" in message:
                    out("mse-attempt %s:%d" % a.ip)
                # ">>> OUTGOING_CONNECTION [ ep: IP:PORT type: uTP ..." and "*** CONNECTION FAILED [ IP:PORT ERROR: ... ]".
                connect = re.search(r">>> OUTGOING_CONNECTION \[ ep: \S+ type: (\S+)", message)
                if connect:
                    out("connect %s:%d %s" % (a.ip + (connect.group(1),)))
                # What the MSE handshake settled on: libtorrent logs "crypto select: rc4" (writing step 4, incoming)
                # or "crypto select : [ rc4 ]" (reading it, outgoing).
                select = re.search(r"crypto select ?: \[? ?(plaintext|rc4)", message)
                if select:
                    out("mse-select %s:%d %s" % (a.ip + (select.group(1),)))
                failed = re.search(r"\*\*\* CONNECTION FAILED \[ \S+ (.*) \]", message)
                if failed:
                    out("connect-failed %s:%d %s" % (a.ip + (failed.group(1),)))
                # What the peer negotiated: reserved bits (BEP 5/6/10), BEP 6 have all/none, its BEP 10 handshake.
                for event in ("<== EXTENSIONS", "<== HAVE_ALL", "<== HAVE_NONE", "<== EXTENDED_HANDSHAKE"):
                    if event in message:
                        out("wire %s:%d %s" % (a.ip + (message[message.index(event) + 4:],)))
            elif isinstance(a, lt.block_finished_alert):
                # A block arrived: the peer is connected and past the handshake; report its flags now (a fast transfer
                # can end, and the connection close, between two polls).
                block_from = True
            elif isinstance(a, lt.dht_get_peers_reply_alert):
                out("dht-peers " + " ".join("%s:%d" % p for p in a.peers()))
            elif isinstance(a, (lt.peer_error_alert, lt.peer_disconnected_alert, lt.torrent_error_alert, lt.hash_failed_alert,
                                lt.file_error_alert, lt.metadata_failed_alert)):
                sys.stderr.write("alert %s\n" % a.message())
                sys.stderr.flush()
        now = time.monotonic()
        if args.reconnect and handle is not None and now - last_reconnect >= args.reconnect:
            last_reconnect = now
            for p in args.peer:
                handle.connect_peer(endpoint(p))
        if block_from or now - last_poll >= 0.5:
            report_peers(handle, seen_peers)
            block_from = False
        if now - last_poll >= 0.5:
            last_poll = now
            if handle is not None:
                status = handle.status()
                # A magnet whose first DHT lookup ran before anyone announced: look again (libtorrent's own lookup,
                # the one a torrent makes; otherwise it waits for dht_announce_interval, 15 minutes).
                if args.dht_bootstrap and status.num_peers == 0 and now - last_force >= 3:
                    last_force = now
                    handle.force_dht_announce()
                if status.is_seeding:
                    finishing = finish(handle, finishing)
            if args.dht_bootstrap:
                ses.post_dht_stats()
                if dht_nodes > 0 and args.dht_get_peers and now - last_lookup >= 2:
                    last_lookup = now
                    ses.dht_get_peers(lt.sha1_hash(bytes.fromhex(args.dht_get_peers)))
            if args.exit_when_complete and finished:
                return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("probe")
    c = sub.add_parser("create")
    c.add_argument("src")
    c.add_argument("out")
    c.add_argument("--v1-only", action="store_true")
    c.add_argument("--v2-only", action="store_true")
    c.add_argument("--piece-size", type=int, default=0)
    c.add_argument("--web-seed", action="append", default=[])
    r = sub.add_parser("run")
    r.add_argument("--listen", required=True)
    r.add_argument("--torrent")
    r.add_argument("--magnet")
    r.add_argument("--save", default=".")
    r.add_argument("--peer", action="append", default=[])
    r.add_argument("--dht-bootstrap", action="append", default=[])
    r.add_argument("--dht-get-peers")
    r.add_argument("--enc", choices=["enabled", "forced", "disabled"], default="enabled")
    r.add_argument("--enc-level", choices=["both", "rc4", "plaintext"], default="both")
    r.add_argument("--defaults", action="store_true")
    r.add_argument("--utp-only", action="store_true")
    r.add_argument("--lsd", action="store_true", help="BEP 14 local service discovery on (session and torrent)")
    r.add_argument("--reconnect", type=int, default=0)
    r.add_argument("--exit-when-complete", action="store_true")
    r.add_argument("--timeout", type=int, default=120)
    args = parser.parse_args()
    if args.command == "probe":
        out("libtorrent " + lt.__version__)
        return 0
    if args.command == "create":
        return create(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
