"""``python -m cluster.cli``: the same as the ``runner`` script."""

from cluster.cli import main

main()
