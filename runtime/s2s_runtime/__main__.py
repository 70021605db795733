"""`python -m s2s_runtime` is `s2s-run`."""

import sys

from s2s_runtime.cli import main

sys.exit(main())
