"""The ``heldout report RUN_DIR`` command."""

from __future__ import annotations

import sys
from dataclasses import fields

from heldout.argument_parser import OneLineArgumentParser
from heldout.errors import HeldoutError
from heldout.report.build import build_report
from heldout.report.settings import ReportSettings


def main(argv: list[str] | None = None) -> int:
    """Write the report of a run folder and print the path of ``report.md``.

    Returns 0 on success, and 2 with a one-line message on stderr when the run folder cannot be used.
    """
    parser = OneLineArgumentParser(
        prog="heldout report",
        description="Write report.md, report.json and plots into a run folder, saying whether validation "
        "accuracy is a fair estimate of test accuracy.",
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="run folder written by `heldout fit` and `heldout test`"
    )
    defaults = ReportSettings()
    descriptions = _field_descriptions(ReportSettings.__doc__ or "")
    for item in fields(ReportSettings):
        default = getattr(defaults, item.name)
        parser.add_argument(
            f"--{item.name}",
            type=type(default),
            default=default,
            metavar=type(default).__name__.upper(),
            help=f"{descriptions.get(item.name, '')} (default: %(default)s)",
        )
    arguments = parser.parse_args(argv)

    try:
        settings = ReportSettings(
            **{item.name: getattr(arguments, item.name) for item in fields(ReportSettings)}
        )
        path = build_report(arguments.run_dir, settings)
    except HeldoutError as error:
        sys.stderr.write(f"heldout: error: {error}\n")
        return 2
    sys.stdout.write(f"Wrote {path}\n")
    return 0


def _field_descriptions(docstring: str) -> dict[str, str]:
    """Read each field's description from the ``Args:`` section of a Google-style docstring."""
    descriptions: dict[str, str] = {}
    lines = docstring.split("Args:", 1)[-1].splitlines()
    name = None
    for line in lines:
        stripped = line.strip()
        head, separator, rest = stripped.partition(": ")
        if separator and head.isidentifier():
            name = head
            descriptions[name] = rest
        elif stripped and name is not None:
            descriptions[name] += " " + stripped
    return descriptions


if __name__ == "__main__":
    sys.exit(main())
