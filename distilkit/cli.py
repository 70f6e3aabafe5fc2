"""The ``distilkit`` command: one subcommand per capability, each defined beside its code."""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that define a subcommand through ``add_cli(subparsers)``; imported lazily so a
# missing optional piece does not break the others.
_SUBCOMMAND_MODULES = (
    "distilkit.data.synthetic",
    "distilkit.models.complexity",
    "distilkit.engine.cli",
    "distilkit.convert",
    "distilkit.experiments.cli",
    "distilkit.predict",
    "distilkit.export",
    "distilkit.publish",
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows each option's default and keeps the examples' line breaks."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distilkit", formatter_class=HelpFormatter,
        description="DistilPose reproducibility and ablation kit. `distilkit COMMAND --help` shows "
                    "each command's options, defaults and examples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and module_name.startswith(err.name):
                continue  # not built yet
            raise
        module.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except _user_errors() as err:  # bad input: one line naming the file, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    return int(result or 0)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors about the user's input or machine, each naming the file or folder it concerns."""
    from distilkit.engine.checkpoint import CheckpointWriteError, UnsafeCheckpointError
    from distilkit.data.errors import DataError
    from distilkit.engine.locks import FolderBusyError
    from distilkit.paths import NoRepositoryError
    from distilkit.publish import PublishError
    from distilkit.weights import WeightsError
    return (DataError, UnsafeCheckpointError, CheckpointWriteError, FolderBusyError, WeightsError,
            NoRepositoryError, PublishError)


if __name__ == "__main__":
    sys.exit(main())
