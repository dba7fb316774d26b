"""Cross-checks frameserver's dataset formats with PyPI Datumaro 1.13 (run by
tests/formats/datumaro-check.sh, which makes the venv: datumaro 1.13.12 + cvat-sdk 2.80.0).

The checks of each format family are one module of tests/formats/dmcheck/ (cvat, datumaro,
yolo, ...; dmcheck/common.py holds what they share and says what a module defines). This script
starts a live `frameserver serve`, reads the enabled formats from its
GET /api/server/annotation/formats (every enabled exporter and importer must have an expectation
in some module's EXPORTS/IMPORTS, or the run fails naming it; only enabled formats are checked),
and runs:

Part 1, exports: an image task (8 frames of several sizes, one of them empty) and a video task
(an 8-frame generated clip), each with rectangles, polygons, polylines, points, ellipses, masks,
tags and two tracks (no skeletons: Datumaro 1.13 cannot read them in the Datumaro format),
uploaded with one PUT. Each module exports them in its formats, with and without images, and
`shared/tools/dataset-summary.py` must report the expected items, labels and annotation counts
per (type, label), computed from what was uploaded (tracks interpolated on every visible frame)
with what the format cannot carry dropped or converted as CVAT does; the module prints each such
known loss.

Part 2, imports: the samples under shared/testdata/datumaro that Datumaro 1.13 reads are imported
into tasks made to fit them (labels from the sample, frames named and sized like its items). What
CVAT cannot import is dropped from a copy first when the server refuses the original. The
annotations the server stored, counted the way Datumaro 1.13 sees them, must equal what
dataset-summary reports for the (filtered) sample.

Exit status 0 when every check passes, 1 otherwise. Usage:
  datumaro_check.py [--keep DIR] [--shared DIR] [--only MODULE ...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fsdriver as fd  # noqa: E402
import dmcheck  # noqa: E402
from dmcheck import common  # noqa: E402
from dmcheck.common import RESULTS, Env, check, note  # noqa: E402


def registry(http, modules) -> tuple[list, list]:
    """The enabled exporters and importers, from GET /api/server/annotation/formats; an enabled
    format without an expectation in a format module is a failed check."""
    import json

    doc = json.loads(fd.rest(http, "GET", "/api/server/annotation/formats").data)
    exporters = [f["name"] for f in doc["exporters"] if f.get("enabled")]
    importers = [f["name"] for f in doc["importers"] if f.get("enabled")]
    print(f"       registry: enabled exporters {exporters}, importers {importers}", flush=True)
    tables = {"exporter": {}, "importer": {}}
    for m in modules:
        tables["exporter"].update(getattr(m, "EXPORTS", {}))
        tables["importer"].update(getattr(m, "IMPORTS", {}))
    for side, names in (("exporter", exporters), ("importer", importers)):
        table = tables[side]
        for n in names:
            check(f"enabled {side} {n!r} has an expectation", n in table,
                  f"the server enables {side} {n!r} but no module of tests/formats/dmcheck has an "
                  f"expectation for it: add one to a module's {'EXPORTS' if side == 'exporter' else 'IMPORTS'}")
        for n in table:
            if n not in names:
                note(f"{side} {n!r} has an expectation but the server does not enable it: not checked")
    return exporters, importers


def guarded(what: str, fn, *args):
    try:
        fn(*args)
    except Exception as e:  # a failed step is a failed check, not the end of the run
        check(what, False, f"{type(e).__name__}: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, help="keep exports, samples and the server log here")
    ap.add_argument("--shared", type=Path, default=None, help="the shared/ directory")
    ap.add_argument("--only", action="append", default=[],
                    help="run only the format modules of these names (e.g. --only yolo); repeatable")
    args = ap.parse_args()
    shared = args.shared or next(p for p in (fd.REPO.parent / "shared", Path("/work/shared")) if p.exists())
    import datumaro

    modules = dmcheck.format_modules()
    if args.only:
        modules = [m for m in modules if m.__name__.rsplit(".", 1)[1] in args.only]
    print(f"datumaro {datumaro.__version__}, server {fd.server_bin()}, shared {shared}, "
          f"format modules {[m.__name__.rsplit('.', 1)[1] for m in modules]}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="datumaro-check-")) if args.keep is None else args.keep
    if args.keep is not None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    t0 = time.perf_counter()
    srv = fd.Server(log_path=work / "server.log")
    try:
        env = Env(srv, fd.Http(srv), srv.client(), shared, work)
        exporters, importers = registry(env.http, dmcheck.format_modules())
        print("\n== Part 1: exports of the synthetic image and video tasks, read by Datumaro 1.13", flush=True)
        tasks = []
        for kind, make in (("image", common.image_task), ("video", common.video_task)):
            try:
                tasks.append(make(Env(srv, env.http, env.client, shared, env.sub(f"part1/{kind}"))))
            except Exception as e:
                check(f"part 1: the {kind} task", False, f"{type(e).__name__}: {e}")
        for m in modules:
            if hasattr(m, "check_exports"):
                guarded(f"exports of {m.__name__}", m.check_exports, tasks, exporters)
        print("\n== Part 2: samples Datumaro 1.13 reads, imported through the API", flush=True)
        part2 = Env(srv, env.http, env.client, shared, env.sub("part2"))
        for m in modules:
            if hasattr(m, "check_imports"):
                guarded(f"imports of {m.__name__}", m.check_imports, part2, importers, exporters)
    finally:
        srv.stop()
    failed = [r for r in RESULTS if not r[1]]
    for name, _, detail in failed:
        print(f"  FAILED: {name}: {detail}")
    if args.keep is None and not failed:
        shutil.rmtree(work, ignore_errors=True)
        where = "--keep DIR keeps the exports and the server log"
    else:
        where = f"exports and samples in {work}, server log {work / 'server.log'}"
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    print(f"datumaro-check: {time.perf_counter() - t0:.1f} s; {where}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
