"""``python -m tickwork``: the same as the ``tickwork`` command."""

from tickwork.service.cli import main

if __name__ == "__main__":
    main()
