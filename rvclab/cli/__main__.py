"""``python -m rvclab.cli``: the same as the ``rvclab`` command."""

import sys

from rvclab.cli import main

sys.exit(main())
