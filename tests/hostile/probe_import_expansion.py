"""Annotation imports that expand: a 3 MB zip holding a CVAT XML with 3 GiB of whitespace in one
text node, and a Datumaro JSON with a 3 GiB string (issue 18, item 2). On main both peaked at
3.2-3.5 GB and the XML one even reported `finished`. Now each request fails naming the limit
(the archive's per-entry expansion ratio with the defaults; `--max-import-value` when that is
lower), the task's annotations are unchanged, and the peak RSS stays small."""

import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import struct
import time
import zlib

from hostile import REPO, Server, check, mib, multipart

GIB3 = 3 << 30


def huge_entry_zip(name, head, fill, size, tail):
    """A zip with one deflated entry `head + fill * (size - len(head) - len(tail)) + tail`.

    The filler is deflated once per MiB behind full flushes, so the identical compressed block
    is repeated instead of compressing 3 GiB here (seconds instead of half a minute)."""
    block = fill * (1 << 20)
    n_blocks, rest = divmod(size - len(head) - len(tail), len(block))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    b1 = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    b2 = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    check(b1 == b2, "full-flushed blocks differ")
    last = c.compress(block[:rest] + tail) + c.flush()
    data = first + b1 * n_blocks + last
    crc = zlib.crc32(head)
    for _ in range(n_blocks):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(block[:rest] + tail, crc)
    fname = name.encode()
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc,
                        len(data), size, len(fname), 0) + fname
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc,
                          len(data), size, len(fname), 0, 0, 0, 0, 0, 0) + fname
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)
    return local + data + central + end


def annotations(s, task):
    r = s.get(f"/api/tasks/{task}/annotations")
    check(r.status == 200, f"annotations: {r}")
    return r.json()


def import_zip(s, task, fmt, name, body):
    form, ctype = multipart({}, [("annotation_file", name, body)])
    r = s.post(f"/api/tasks/{task}/annotations?format={fmt.replace(' ', '+')}", form,
               headers={"Content-Type": ctype})
    check(r.status == 202, f"import {name}: {r}")
    return s.wait(r.json()["rq_id"], timeout=40)


def run():
    xml = huge_entry_zip("annotations.xml", b"<annotations>", b" ", GIB3, b"</annotations>")
    dm = huge_entry_zip("annotations/default.json",
                        b'{"categories": {}, "items": [], "info": "', b"a", GIB3, b'"}')
    with open(os.path.join(REPO, "testdata", "images", "set", "a.jpg"), "rb") as f:
        image = f.read()
    cases = [
        # (server flags, what the failure must name)
        ((), "expands to more than 200 times its compressed size"),
        (("--max-import-value", 1 << 20), "is larger than 1048576 bytes (--max-import-value)"),
    ]
    for flags, want in cases:
        with Server("--cache-size", 8 << 20, *flags) as s:
            s.use_token()
            task = s.create_task("expansion")
            done = s.wait(s.upload(task, [("a.jpg", image)]))
            check(done["status"] == "finished", f"task data: {done}")
            label = s.get(f"/api/labels?task_id={task}").json()["results"][0]["id"]
            box = {"type": "rectangle", "label_id": label, "frame": 0, "points": [1, 2, 3, 4]}
            r = s.put(f"/api/tasks/{task}/annotations", {"shapes": [box], "tags": [], "tracks": []})
            check(r.status == 200, f"put: {r}")
            before = annotations(s, task)
            base = s.peak_rss()
            for fmt, name, body in [("CVAT 1.1", "xml_bomb.zip", xml),
                                    ("Datumaro 1.0", "json_bomb.zip", dm)]:
                t = time.time()
                done = import_zip(s, task, fmt, name, body)
                took = time.time() - t
                msg = done.get("message", "")
                check(done["status"] == "failed", f"{name} {flags}: {done}")
                check(want in msg, f"{name} {flags}: {msg!r} does not name the limit ({want!r})")
                check(annotations(s, task) == before, f"{name}: annotations changed")
                print(f"measured: {name} ({len(body) / 1e6:.1f} MB zip, 3 GiB inside) "
                      f"{' '.join(map(str, flags)) or 'defaults'}: failed in {took:.1f} s: {msg}")
            peak = s.peak_rss()
            bound = 400 << 20
            check(peak < bound, f"peak RSS {mib(peak)} over {mib(bound)}")
            print(f"measured: peak RSS {mib(peak)} (before the imports {mib(base)}; bound "
                  f"{mib(bound)}; main: 3.24 GB for the XML, 3.5 GB for the JSON)")


if __name__ == "__main__":
    run()
