"""Runs the hostile-input probes (tests/hostile/probe_*.py), each in its own process with a time
limit, and prints `N passed, N failed`. Arguments select probes by substring of their name.

    FRAMESERVER_BIN=target/debug/frameserver python3 tests/hostile/run.py [NAME...]
"""

import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIMIT = int(os.environ.get("HOSTILE_PROBE_TIMEOUT", "60"))


def main():
    probes = sorted(glob.glob(os.path.join(HERE, "probe_*.py")))
    if len(sys.argv) > 1:
        probes = [p for p in probes if any(a in os.path.basename(p) for a in sys.argv[1:])]
    passed = failed = 0
    started = time.time()
    for p in probes:
        name = os.path.basename(p)[len("probe_"):-3]
        t = time.time()
        try:
            r = subprocess.run([sys.executable, p], timeout=LIMIT, capture_output=True, text=True)
            ok, out = r.returncode == 0, r.stdout + r.stderr
        except subprocess.TimeoutExpired as e:
            ok = False
            out = f"timed out after {LIMIT} s\n{(e.stdout or b'').decode() if isinstance(e.stdout, bytes) else (e.stdout or '')}"
        dt = time.time() - t
        if ok:
            passed += 1
            print(f"ok    {name} ({dt:.1f} s)")
            for line in out.strip().splitlines():
                if line.startswith("measured:"):
                    print(f"        {line}")
        else:
            failed += 1
            print(f"FAIL  {name} ({dt:.1f} s)\n" + "\n".join("      " + l for l in out.strip().splitlines()[-60:]))
    print(f"hostile probes took {time.time() - started:.1f} s")
    print(f"hostile: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not probes else 0)


if __name__ == "__main__":
    main()
