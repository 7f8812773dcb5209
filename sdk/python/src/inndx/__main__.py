"""``python -m inndx``: the command line (see ``inndx.cli``)."""

import sys

from inndx.cli import main

sys.exit(main())
