"""``python -m momentum_dev``: the whole platform on one machine (``make dev``)."""

import sys

from momentum_dev.runner import main

sys.exit(main())
