"""Annotation PUT bodies are limited by `--max-annotation-body` and parsed as they stream in
(issue 18, item 5). On main a 2 GiB PUT was accepted up to the 16 GiB upload limit and peaked
at 4.27 GB. Now: a 2 GiB Content-Length is answered 413 at once; a chunked body (no
Content-Length) is cut off with 413 once it passes the limit; a body just under the limit is
parsed without being held whole."""

import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import json
import socket
import struct
import threading
import time
import uuid
import zlib

from hostile import REPO, Server, check, mib, read_response


def raw_put(s, path, headers, body_iter, chunked, method="PUT"):
    """A request over a raw socket, sending `body_iter` from a thread (the server may answer and
    close before the body ends); returns (status, body text, seconds to the answer, bytes sent)."""
    sock = socket.create_connection((s.host, s.port), timeout=60)
    headers = {"Content-Type": "application/json", **headers}
    head = [f"{method} {path} HTTP/1.1", f"Host: {s.host}:{s.port}",
            f"Authorization: Bearer {s.token}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = [0]

    def send():
        try:
            for piece in body_iter:
                if chunked:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    sock.sendall(piece)
                sent[0] += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed

    t0 = time.time()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    status, _, rest = read_response(sock)
    took = time.time() - t0
    sock.close()
    return status, rest.decode(errors="replace"), took, sent[0]


def shapes_body(label, target):
    """An annotations body of rectangles, just under `target` bytes."""
    one = json.dumps({"type": "rectangle", "label_id": label, "frame": 0,
                      "points": [1.5, 2.5, 30.25, 40.75], "attributes": []}).encode()
    head, tail = b'{"tags": [], "tracks": [], "shapes": [', b"]}"
    n = (target - len(head) - len(tail)) // (len(one) + 1)
    return head + b",".join([one] * n) + tail, n


def multipart_stored_zip(name, size):
    """(content type, length, pieces) of a multipart body whose file is a zip holding `name`:
    `size` zero bytes, stored; streamed in 1 MiB pieces, never built whole."""
    block = bytes(1 << 20)
    crc = 0
    for _ in range(size // len(block)):
        crc = zlib.crc32(block, crc)
    fname = name.encode()
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, size, size,
                        len(fname), 0) + fname
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, crc,
                          size, size, len(fname), 0, 0, 0, 0, 0, 0) + fname
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + size,
                      0)
    boundary = uuid.uuid4().hex
    pre = (f'--{boundary}\r\nContent-Disposition: form-data; name="annotation_file"; '
           f'filename="big.zip"\r\nContent-Type: application/zip\r\n\r\n').encode() + local
    post = central + end + f"\r\n--{boundary}--\r\n".encode()

    def pieces():
        yield pre
        for _ in range(size // len(block)):
            yield block
        yield post

    return (f"multipart/form-data; boundary={boundary}", len(pre) + size + len(post), pieces())


def task_with_image(s):
    with open(os.path.join(REPO, "testdata", "images", "set", "a.jpg"), "rb") as f:
        image = f.read()
    task = s.create_task("body")
    done = s.wait(s.upload(task, [("a.jpg", image)]))
    check(done["status"] == "finished", f"task data: {done}")
    label = s.get(f"/api/labels?task_id={task}").json()["results"][0]["id"]
    return task, label


def run():
    block = b" " * (1 << 20)
    with Server("--cache-size", 8 << 20) as s:
        s.use_token()
        task, label = task_with_image(s)
        path = f"/api/tasks/{task}/annotations"
        # 2 GiB declared: refused from the header, before the body.
        status, text, took, sent = raw_put(
            s, path, {"Content-Length": 2 << 30}, (block for _ in range(2048)), chunked=False)
        check(status == 413, f"2 GiB PUT: {status} {text}")
        check("(--max-annotation-body)" in text, f"2 GiB PUT: {text}")
        check(took < 5, f"2 GiB PUT answered after {took:.1f} s")
        peak = s.peak_rss()
        bound = 200 << 20
        check(peak < bound, f"peak RSS {mib(peak)} over {mib(bound)}")
        print(f"measured: 2 GiB PUT: {status} in {took:.2f} s after {mib(sent)} sent; "
              f"peak RSS {mib(peak)} (bound {mib(bound)}; main: 4.27 GB)")
        # A 256 MiB multipart import is streamed to disk (main held it whole in memory).
        ctype, length, pieces = multipart_stored_zip("zeros.bin", 256 << 20)
        status, text, took, sent = raw_put(
            s, f"{path}?format=CVAT+1.1", {"Content-Type": ctype, "Content-Length": length},
            pieces, chunked=False, method="POST")
        check(status == 202, f"multipart import: {status} {text}")
        done = s.wait(json.loads(text)["rq_id"])
        check(done["status"] == "failed" and "no .xml" in done["message"], f"import: {done}")
        grown = s.peak_rss() - peak
        check(grown < 64 << 20, f"a 256 MiB multipart import grew the peak RSS by {mib(grown)}")
        print(f"measured: 256 MiB multipart import: peak RSS +{mib(grown)} (bound 64 MiB; main: "
              f"+274 MiB, the file held whole)")

    limit = 24 << 20
    with Server("--cache-size", 8 << 20, "--max-annotation-body", limit) as s:
        s.use_token()
        task, label = task_with_image(s)
        path = f"/api/tasks/{task}/annotations"
        r = s.put(path, {"shapes": [], "tags": [], "tracks": []})
        check(r.status == 200, f"empty put: {r}")
        # Chunked, no Content-Length: cut off once past the limit.
        body, _ = shapes_body(label, 4 * limit)
        pieces = (body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20))
        status, text, took, sent = raw_put(s, path, {}, pieces, chunked=True)
        check(status == 413, f"chunked PUT: {status} {text}")
        check(f"larger than {limit} bytes (--max-annotation-body)" in text, text)
        print(f"measured: chunked {mib(len(body))} PUT under a {mib(limit)} limit: {status} in "
              f"{took:.2f} s ({mib(sent)} sent by then)")
        check(s.get(path).json()["shapes"] == [], "a refused PUT changed the annotations")
        # Just under the limit, with a bad label at the very end: parsed whole, then refused
        # by validation; the peak is what parsing it costs.
        base = s.rss()
        body, n = shapes_body(label, limit - 1024)
        bad = json.dumps({"type": "rectangle", "label_id": 999999, "frame": 0,
                          "points": [1, 2, 3, 4]}).encode()
        r = s.request("PUT", path, body[:-2] + b"," + bad + b"]}",
                      headers={"Content-Type": "application/json"}, timeout=120)
        check(r.status == 400, f"PUT with a bad label: {r}")
        parse_peak = s.peak_rss()
        # The same without the bad label: stored (the store and the response add to it).
        t = time.time()
        r = s.request("PUT", path, body, headers={"Content-Type": "application/json"},
                      timeout=120)
        took = time.time() - t
        check(r.status == 200, f"PUT just under the limit: {r}")
        peak = s.peak_rss()
        print(f"measured: PUT of {mib(len(body))} ({n} boxes) just under the limit: parsed and "
              f"refused at validation with peak RSS {mib(parse_peak)} (RSS before {mib(base)}; "
              f"main 166 MiB, the body held besides the objects); stored in {took:.1f} s with "
              f"peak RSS {mib(peak)} (main 331 MiB)")


if __name__ == "__main__":
    run()
