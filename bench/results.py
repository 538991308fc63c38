"""What every benchmark does with its figures: print the table, and on request write them
to bench/results/NAME.json with a description of the machine that measured them.

Figures from different machines are only comparable as ratios to a reference measured in
the same run; the description says what the absolute ones were measured on.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# key in the description -> module whose __version__ it reports
LIBRARIES = {
    "numpy": "numpy",
    "numba": "numba",
    "scipy": "scipy",
    "opencv": "cv2",
    "stonesoup": "stonesoup",
    "filterpy": "filterpy",
}


def header(name: str, argv: Sequence[str], *libraries: str, **extra) -> dict:
    """The first keys of every results file: the benchmark, the command that ran it, when,
    and on what machine (`machine(*libraries, **extra)`)."""
    return {
        "benchmark": name,
        "command": " ".join(["python -m bench", name, *argv]),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(*libraries, **extra),
    }


def machine(*libraries: str, **extra) -> dict:
    """The machine and Python; the versions of `libraries` (keys of LIBRARIES, or "sqlite"),
    None for one not installed; then `extra` as given."""
    description = {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0],  # the machine is often shared: say how busy
    }
    for name in libraries:
        description[name] = library_version(name)
    description.update(extra)
    return description


def library_version(name: str) -> str | None:
    if name == "sqlite":
        return sqlite3.sqlite_version
    try:
        return importlib.import_module(LIBRARIES[name]).__version__
    except ImportError:
        return None


def add_json_option(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"write bench/results/{name}.json")


def publish(table: str, figures, json_name: str | None) -> Path | None:
    """Print the table; with a name, write the figures to bench/results/NAME.json."""
    print(table)
    if json_name is None:
        return None
    return write(RESULTS_DIR / f"{json_name}.json", figures)


def write(path: Path, figures) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=_plain) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def _plain(value):
    """JSON for what `json` does not know: paths as text, NumPy scalars and arrays as numbers."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
