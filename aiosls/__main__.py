"""``python -m aiosls``: the same as the ``aiosls`` command."""

import sys

from .cli import main

sys.exit(main())
