"""`--cache-size` did not bound the process (issue 18, item 6): with an 8 MiB cache, 64
connections on a 1080p clip, half of them playing original-quality chunks (12.8 MB each, never
kept by the cache) and half compressed ones, each from a different start, took main to 636-667
MiB peak RSS (33 builds of 18 distinct chunks, p99 5-7.5 s). The p99 is printed, not checked:
this pattern asks for 18 cold chunks at once, about ten build times of work on two cores. The
whole process must stay under `--memory-limit` (default: cache + 512 MiB): builds wait for memory, decoders and items are counted. Also: clients that hang up
mid-build leave `frameserver_chunk_builds_in_flight` at 0 (item 7).

The clip is made by ffmpeg (testsrc2): 1920x1080 H.264, 300 frames, key frames at 0 and 250, so
a cold chunk decodes up to 250 frames.
"""

import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # noqa: E401,E702
import socket
import threading
import time

from hostile import Server, check, mib, video_clip

CACHE = 8 << 20
BOUND = CACHE + (512 << 20)  # the default --memory-limit


def metric(s, name):
    try:
        return s.metric(name)
    except AssertionError:
        return float("nan")  # not exported (main)


def timed_get(s, path, timeout=60):
    t = time.time()
    r = s.get(path, timeout=timeout)
    return r, time.time() - t


def load(s, paths, clients=64):
    """`clients` threads, client i requesting each path `paths(i)` yields in turn: (sorted
    latencies, failures, wall time)."""
    latencies, errors = [], []
    lock = threading.Lock()

    def client(i):
        for path in paths(i):
            try:
                r, dt = timed_get(s, path)
                ok = r.status == 200
            except OSError as e:
                ok, dt, r = False, 60.0, e
            with lock:
                latencies.append(dt)
                if not ok:
                    errors.append(repr(r)[:200])

    started = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return latencies, errors, time.time() - started


def run():
    with Server("--cache-size", CACHE) as s:
        s.use_token()
        task = s.create_task("clip1080")
        out = s.wait(s.upload(task, [("clip.mp4", video_clip())]))
        check(out["status"] == "finished", f"creation: {out}")
        meta = s.get(f"/api/tasks/{task}/data/meta").json()
        chunks = -(-meta["size"] // meta["chunk_size"])
        url = f"/api/tasks/{task}/data?type=chunk&number={{}}&quality={{}}"

        # One build time, measured in this run: a cold original chunk (the slowest item) alone;
        # and a cold compressed one, for the work floor of the load below.
        r, build = timed_get(s, url.format(chunks - 3, "original"))
        check(r.status == 200, f"cold chunk: {r}")
        r, build_compressed = timed_get(s, url.format(chunks - 2, "compressed"))
        check(r.status == 200, f"cold chunk: {r}")
        # The load asks for every chunk of both qualities at once: the last answer cannot come
        # before all of them are built, on os.cpu_count() builders.
        floor = chunks * (build + build_compressed) / (os.cpu_count() or 1)

        # 64 connections watching the same video in step (an annotation team on one task): each
        # wave asks for the next cold compressed chunk at once; single flight and the held item
        # make a wave cost one build, whatever the cache keeps.
        barrier = threading.Barrier(64)

        def viewer(i):
            for k in range(3):
                barrier.wait()
                yield url.format(1 + k * 2, "compressed")

        wave_latencies, wave_errors, _ = load(s, viewer)
        wave_p99 = wave_latencies[int(0.99 * (len(wave_latencies) - 1))]
        print(f"measured: 64 connections in step on 3 cold compressed chunks: p99 {wave_p99:.2f} s "
              f"= {wave_p99 / build_compressed:.1f}x one build ({build_compressed:.2f} s; target "
              f"<= 2x); peak RSS {mib(s.peak_rss())}")
        check(not wave_errors, f"{len(wave_errors)} requests failed: {wave_errors[:3]}")
        check(s.peak_rss() <= BOUND, f"peak RSS {mib(s.peak_rss())} is over {mib(BOUND)}")
        check(wave_p99 <= 2 * build_compressed + 0.5,
              f"p99 {wave_p99:.2f} s is over 2x one build ({build_compressed:.2f} s)")

        # 64 connections: client i plays 4 chunks from chunk i % N, odd clients original quality.
        def client(i):
            quality = "original" if i % 2 else "compressed"
            for k in range(4):
                yield url.format((i + k) % chunks, quality)

        latencies, errors, wall = load(s, client)
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        peak = s.peak_rss()
        budget = metric(s, "frameserver_memory_budget_bytes")
        reserved_peak = metric(s, "frameserver_memory_reserved_peak_bytes")
        builds = s.metric("frameserver_chunk_build_seconds_count")
        print(f"measured: peak RSS {mib(peak)} (bound {mib(BOUND)}; main: 636-667 MiB); budget "
              f"{budget / 2**20:.0f} MiB, most reserved at once {reserved_peak / 2**20:.0f} MiB")
        print(f"measured: {len(latencies)} requests in {wall:.1f} s: p50 {p50:.2f} s, p99 {p99:.2f} s "
              f"= {p99 / build:.1f}x one build ({build:.2f} s, cold original chunk), "
              f"{p99 / floor:.2f}x the work floor ({floor:.2f} s: {2 * chunks} cold builds on "
              f"{os.cpu_count()} cores); "
              f"{builds:.0f} builds for {2 * chunks} distinct chunks (main: 33)")
        check(not errors, f"{len(errors)} requests failed: {errors[:3]}")
        check(peak <= BOUND, f"peak RSS {mib(peak)} is over the bound {mib(BOUND)}")
        check(budget == BOUND - (96 << 20), f"the budget gauge: {budget}")
        # Clients that go away mid-build (cold frames: exact PNGs decoded from the key frame):
        # the builds go on, the gauge comes back to 0.
        for n in (40, 120, 200):
            c = socket.create_connection((s.host, s.port))
            c.sendall(
                f"GET /api/tasks/{task}/data?type=frame&number={n}&quality=original HTTP/1.1\r\n"
                f"Host: x\r\n"
                f"Authorization: Bearer {s.token}\r\n\r\n".encode()
            )
            time.sleep(0.05)
            c.close()
        deadline = time.time() + 20
        while s.metric("frameserver_chunk_builds_in_flight") != 0 and time.time() < deadline:
            time.sleep(0.1)
        in_flight = s.metric("frameserver_chunk_builds_in_flight")
        check(in_flight == 0, f"builds in flight after the clients left: {in_flight}")


if __name__ == "__main__":
    run()
