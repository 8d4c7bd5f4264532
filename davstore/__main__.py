"""``python -m davstore``: the same as the ``davstore`` command."""

from __future__ import annotations

import sys

from davstore.cli import main

if __name__ == "__main__":
    sys.exit(main())
