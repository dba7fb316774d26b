"""The Datumaro cross-check of frameserver's formats, one module per format family (see
common.py for what a module holds); tests/formats/datumaro_check.py runs them."""

import importlib
import pkgutil
from pathlib import Path


def format_modules():
    """Every format module of this package (all but `common`), in name order."""
    here = Path(__file__).resolve().parent
    return [importlib.import_module(f"{__name__}.{m.name}")
            for m in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name)
            if m.name != "common"]
