"""python -m jit.api.openapi --connector DIR [--host ...] | --openapi FILE (see scripts/generate-connector)."""

import sys

from jit.api.openapi.files import main

sys.exit(main())
