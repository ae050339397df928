"""``python -m bench`` from the e2e folder (what ``make bench`` runs)."""

import sys
from pathlib import Path

# The local fleet runner (scripts/fleet.py), as the e2e tests import it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from bench.run import main

sys.exit(main())
