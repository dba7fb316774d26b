"""Half-open connections cannot starve the server (issue 18 item 4).

With --max-connections 200 --header-timeout 2: 260 connections that send a partial request head
and then nothing. Past the cap a new client gets a 503 at once, a keep-alive connection opened
before keeps working, the half-open ones are closed after ~2 s, new clients are then served, and
the server's open file descriptors return to where they started.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile
from hostile import Server, check

CAP = 200


def read_response(sock, timeout=5):
    """Status and text of one response on `sock` (headers + Content-Length body)."""
    status, head, body = hostile.read_response(sock, timeout)
    return status, (head + b"\r\n\r\n" + body).decode(errors="replace")


def closed(sock, timeout):
    """True if the server closes `sock` within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def new_client(s, request):
    """A new connection sends `request`: (status, response text, seconds to the answer)."""
    t = time.time()
    c = socket.create_connection((s.host, s.port))
    try:
        c.sendall(request)
        status, text = read_response(c)
        return status, text, time.time() - t
    finally:
        c.close()


def run():
    with Server("--max-connections", CAP, "--header-timeout", 2, "--idle-timeout", 20) as s:
        about = f"GET /api/server/about HTTP/1.1\r\nHost: {s.host}:{s.port}\r\n\r\n".encode()
        time.sleep(0.3)
        fds_start = s.open_fds()
        keep = socket.create_connection((s.host, s.port))
        keep.sendall(about)
        check(read_response(keep)[0] == 200, "keep-alive connection")
        half = []
        for _ in range(CAP + 60):
            c = socket.create_connection((s.host, s.port))
            c.sendall(b"GET /api/server/about HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            half.append(c)
        opened = time.time()
        time.sleep(0.3)
        fds_full = s.open_fds()

        status, text, refused_s = new_client(s, about)
        check(status == 503, f"a new client past the cap: {status} {text!r}")
        check("Connection: close" in text and f"limit of {CAP}" in text, text)
        check(refused_s < 1.0, f"503 took {refused_s:.2f} s")

        keep.sendall(about)
        check(read_response(keep)[0] == 200, "the keep-alive connection stopped working")

        # The half-open ones past the cap were refused at once, the others after the timeout.
        n_closed = sum(closed(c, max(0.1, 6 - (time.time() - opened))) for c in half)
        closed_s = time.time() - opened
        check(n_closed == len(half), f"only {n_closed} of {len(half)} half-open connections closed")
        check(closed_s < 5, f"half-open connections closed after {closed_s:.1f} s (timeout 2 s)")
        for c in half:
            c.close()

        status, _, served_s = new_client(s, about)
        check(status == 200, f"a new client after the timeout: {status}")
        keep.close()
        time.sleep(0.5)
        fds_end = s.open_fds()
        check(fds_end <= fds_start + 5, f"open fds {fds_start} at start, {fds_end} at the end")
        refused = s.metric("frameserver_connections_refused_total")
        timed_out = s.metric("frameserver_connections_timed_out_total")
        check(timed_out >= CAP - 1, f"timed out {timed_out}")
        print(
            f"measured: {len(half)} half-open connections (cap {CAP}): fds {fds_start} -> "
            f"{fds_full} -> {fds_end}; new client got 503 in {refused_s * 1000:.0f} ms "
            f"({refused:.0f} refused), half-open closed within {closed_s:.1f} s (header timeout 2 s), "
            f"then served in {served_s * 1000:.0f} ms (main: no cap, no header timeout)"
        )


if __name__ == "__main__":
    run()
