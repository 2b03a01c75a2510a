"""`python -m mailhost.stack ...`: see mailhost.stack.cli."""

import os
import sys

from mailhost.stack.cli import main

try:
    sys.exit(main())
except BrokenPipeError:  # e.g. `status | head -1`
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(1)
