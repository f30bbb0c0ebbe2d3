"""`python -m bos_reporter`: the same as the `bos-reporter` executable."""

import sys

from .main import main

sys.exit(main())
