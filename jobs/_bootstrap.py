"""Make ``lid_spark`` importable when a job file is run directly (spark-submit jobs/x.py) from a checkout."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
