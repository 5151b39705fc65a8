"""``python -m hpo`` = the ``hpo`` console script."""

import sys

from hpo.cli import main

sys.exit(main())
