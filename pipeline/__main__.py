"""`python -m pipeline`: the same entry point as the `marketo-pipeline` console script."""

import sys

from pipeline.cli import main

sys.exit(main())
