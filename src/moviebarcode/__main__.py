"""``python -m moviebarcode``: the same CLI as the ``moviebarcode`` command."""

from moviebarcode.cli import main

main()
