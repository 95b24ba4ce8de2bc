"""`python -m linectl` is the `linectl` command."""

import sys

from linectl.cli import main

sys.exit(main())
