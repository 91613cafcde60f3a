"""`python -m corridors.cli` is the `corridors` command."""

import sys

from ._main import main

sys.exit(main())
