"""``python -m core.local.serving --config endpoint.json``: run one endpoint server in this process."""

import sys

from .server import main

sys.exit(main())
