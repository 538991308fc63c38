"""Command line of HQ: `python -m hq <command> ...`.

    python -m hq broker-config --node SITE/NODE ... --out DIR   hq.broker.main(argv)
    python -m hq audit-verify --store STORE [--anchor HASH]     hq.audit_cli.main(argv)
    python -m hq run --config configs/hq.toml                   hq.run.main(argv)
    python -m hq token create|list|revoke --store STORE ...     hq.api.token_cli.main(argv)

Benchmarks of HQ: `python -m bench hq|hq_fusion|hq_store|hq_api|hq_page|soak`.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "broker-config": "hq.broker:main",
    "audit-verify": "hq.audit_cli:main",
    "run": "hq.run:main",
    "token": "hq.api.token_cli:main",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m hq {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    module_name, function_name = COMMANDS[argv[0]].split(":")
    return int(getattr(importlib.import_module(module_name), function_name)(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
