"""``python -m tickwork`` and the ``tickwork`` command.

This entry point lives in the core (it is the one place where the core names the service) so
that, without the ``[service]`` extra, the command prints one line saying what to install and
exits 2 instead of failing with a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from tickwork._extras import MissingExtraError


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the ``tickwork`` command line (``tickwork.service.cli``) and exit with its code.

    Args:
        argv: The arguments (without the program name); ``sys.argv[1:]`` by default.
    """
    try:
        from tickwork.service.cli import main as cli_main
    except MissingExtraError as exc:
        print(f"tickwork: error: {exc}", file=sys.stderr)
        sys.exit(2)
    cli_main(argv)


if __name__ == "__main__":
    main()
