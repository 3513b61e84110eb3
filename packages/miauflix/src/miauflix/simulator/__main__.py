"""Entry point of `python -m miauflix.simulator`."""

import sys

from miauflix.simulator._cli import main

if __name__ == "__main__":
    sys.exit(main())
