"""``python -m fsq`` is the ``fsq`` command (also under ``torchrun -m fsq``)."""

from fsq.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
