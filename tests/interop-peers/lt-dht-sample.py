#!/usr/bin/python3
"""BEP 51 (DHT infohash indexing) with libtorrent 2.0 (python3-libtorrent), for tests/Peerway.Interop.Tests/Dht.

  lt-dht-sample.py serve            a libtorrent DHT node on 127.0.0.1; prints "listening PORT", runs until SIGTERM/SIGINT
  lt-dht-sample.py serve6           the same on [::1] (BEP 32, the IPv6 DHT: Ipv6ServeProcessTests.cs)
  lt-dht-sample.py sample IP:PORT   asks that node for a sample (dht_sample_infohashes); prints one JSON line
                                    {"num","interval","samples":[hex...]} and exits 0, or exits 1 after 30 s without one
"""
import json, signal, sys, time, hashlib, os
import libtorrent as lt

SETTINGS = {"listen_interfaces": "127.0.0.1:0", "enable_dht": True, "dht_bootstrap_nodes": "", "enable_lsd": False,
            "enable_upnp": False, "enable_natpmp": False, "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
            "dht_ignore_dark_internet": False, "dht_enforce_node_id": False, "dht_prefer_verified_node_ids": False,
            "alert_mask": lt.alert.category_t.dht_notification | lt.alert.category_t.dht_operation_notification}

mode = sys.argv[1] if len(sys.argv) > 1 else ""
s = lt.session(dict(SETTINGS, listen_interfaces="[::1]:0") if mode == "serve6" else SETTINGS)
if mode in ("serve", "serve6"):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print(f"listening {s.listen_port()}", flush=True)
    while not stop:
        s.wait_for_alert(200)
        s.pop_alerts()
    sys.exit(0)
elif mode == "sample" and len(sys.argv) == 3:
    host, _, port = sys.argv[2].rpartition(":")
    s.dht_sample_infohashes((host, int(port)), lt.sha1_hash(hashlib.sha1(os.urandom(20)).digest()))
    until = time.time() + 30
    while time.time() < until:
        s.wait_for_alert(500)
        for a in s.pop_alerts():
            if isinstance(a, lt.dht_sample_infohashes_alert):
                print(json.dumps({"num": a.num_infohashes, "interval": int(a.interval.total_seconds()) if hasattr(a.interval, "total_seconds") else a.interval,
                                  "samples": [str(h) for h in a.samples]}), flush=True)
                sys.exit(0)
    sys.exit(1)
else:
    print(__doc__, file=sys.stderr)
    sys.exit(2)
