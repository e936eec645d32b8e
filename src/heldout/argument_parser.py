"""An argparse parser for the ``report`` and ``audit`` subcommands that reports usage errors in one line."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors print one ``heldout: error: ...`` line and exit with status 2.

    By default argparse prints the usage text followed by ``PROG: error: ...``, unlike the other subcommands.
    """

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"heldout: error: {message}. Run '{self.prog} --help' for the options.\n")
        sys.exit(2)
