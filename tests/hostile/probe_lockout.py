"""Login lockout cannot lock everyone out (issue 18 item 3).

One address fails 25 times (6 against `admin`, 19 against other names); then a correct login of
another user from that same address and a correct `admin` login from another address must both
succeed at once, while `admin` from the failing address stays refused (429). Behind a trusted
proxy (--trusted-proxies), X-Forwarded-For clients count separately; from anyone else the header
is ignored. "Other addresses" are other loopback addresses (127.0.0.0/8 is all local).
"""

import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import ADMIN_PASSWORD, Server, check


def login(s, user, password, source="127.0.0.1", xff=None):
    """POST /api/auth/login from `source`; returns (status, seconds taken)."""
    h = {"Content-Type": "application/json"}
    if xff:
        h["X-Forwarded-For"] = xff
    c = http.client.HTTPConnection(s.host, s.port, timeout=60, source_address=(source, 0))
    t = time.time()
    try:
        c.request("POST", "/api/auth/login", json.dumps({"username": user, "password": password}), h)
        r = c.getresponse()
        r.read()
        return r.status, time.time() - t
    finally:
        c.close()


def parallel(n, fn):
    """Runs fn(i) for i in range(n) in threads; returns the results in order."""
    out = [None] * n

    def one(i):
        out[i] = fn(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def run():
    with Server("--trusted-proxies", "127.0.0.3") as s:
        s.create_user("alice", "alice-password")
        attacker = "127.0.0.2"
        admin_tries = [login(s, "admin", "wrong", attacker)[0] for _ in range(6)]
        check(admin_tries == [400] * 5 + [429], f"6 wrong admin logins: {admin_tries}")
        results = parallel(19, lambda i: login(s, f"user{i}", "wrong", attacker)[0])
        check(results == [400] * 19, f"19 sprayed failures: {sorted(results)}")

        alice, alice_s = login(s, "alice", "alice-password", attacker)
        check(alice == 200, f"alice from the address that failed 25 times: {alice} (main: 429)")
        admin, admin_s = login(s, "admin", ADMIN_PASSWORD, "127.0.0.4")
        check(admin == 200, f"admin from another address: {admin} (main: 429)")
        locked, _ = login(s, "admin", ADMIN_PASSWORD, attacker)
        check(locked == 429, f"admin from the failing address: {locked}")
        slowed, slowed_s = login(s, "bob", "wrong", attacker)
        check(slowed == 400 and slowed_s >= 2, f"braked failure: {slowed} after {slowed_s:.2f} s")

        # Behind the trusted proxy: per X-Forwarded-For client, right-most untrusted hop.
        proxy = "127.0.0.3"
        behind = parallel(5, lambda i: login(s, "alice", "wrong", proxy, "203.0.113.7")[0])
        behind.append(login(s, "alice", "alice-password", proxy, "203.0.113.7")[0])
        check(behind == [400] * 5 + [429], f"one client behind the proxy: {behind}")
        other = login(s, "alice", "alice-password", proxy, "198.51.100.8")[0]
        check(other == 200, f"another client behind the proxy: {other}")
        spoof = login(s, "alice", "alice-password", proxy, "198.51.100.8, 203.0.113.7")[0]
        check(spoof == 429, f"prepending an address to X-Forwarded-For: {spoof}")
        # An untrusted peer cannot pick its address with the header.
        direct = parallel(5, lambda i: login(s, "alice", "wrong", "127.0.0.5", f"192.0.2.{i}")[0])
        direct.append(login(s, "alice", "alice-password", "127.0.0.5", "192.0.2.200")[0])
        check(direct == [400] * 5 + [429], f"X-Forwarded-For from an untrusted peer: {direct}")
        print(
            f"measured: after 25 failures from one address: alice there {alice} in {alice_s:.2f} s, "
            f"admin elsewhere {admin} in {admin_s:.2f} s (main: 429, 429); admin there 429; "
            f"next failure there answered after {slowed_s:.1f} s"
        )


if __name__ == "__main__":
    run()
