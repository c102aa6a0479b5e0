"""``python -m ragship.cli``, as ``python -m`` ran the single-module CLI before."""

from ragship.cli import main

main()
