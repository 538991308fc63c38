"""Command line of the edge node: `python -m edge <command> ...`.

Each command lives in its own module, imported only when it runs; this file
only parses the command name and hands the rest of the arguments to that
module's entry point, which parses them itself. (Benchmarks: `python -m bench`.)

    python -m edge georef --lat ... --u PX --v PX [--json]  edge.georef_cli.main(argv)
    python -m edge run --config configs/edge/<post>.toml    edge.run.main(argv)
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> "module:function" taking the remaining arguments
COMMANDS = {
    "georef": "edge.georef_cli:main",
    "run": "edge.run:main",
}


def _call(target: str, argv: list[str]) -> int:
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(argv)
    return int(result or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, target in COMMANDS.items():
        commands.add_parser(name, add_help=False, help=f"runs {target.replace(':', '.')}")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = build_parser().parse_known_args(argv)
    return _call(COMMANDS[args.command], rest)


if __name__ == "__main__":
    sys.exit(main())
