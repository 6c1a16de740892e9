"""Command line: `python -m maintenance validate-config FILE` (exit 0 when valid, 1 when not)."""

from __future__ import annotations

import argparse
import sys

from maintenance.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maintenance")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate-config", help="check a maintenance config file")
    validate.add_argument("file")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.file}: valid ({len(config.endpoints)} endpoints, site {config.site.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
