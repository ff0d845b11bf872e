"""Progress lines for long jobs: one line per step with elapsed time, on stderr."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

_FORMAT = "%(asctime)s lid-spark %(message)s"


def get_logger(name: str = "lid_spark") -> logging.Logger:
    logger = logging.getLogger(name)
    if not logging.getLogger("lid_spark").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
        root = logging.getLogger("lid_spark")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
    return logger


@contextmanager
def step(name: str, logger: logging.Logger | None = None):
    """Log the start and the end (with seconds taken) of a named step."""
    logger = logger or get_logger()
    logger.info("▶ %s", name)
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        logger.info("✗ %s failed after %.1f s", name, time.perf_counter() - start)
        raise
    logger.info("✓ %s (%.1f s)", name, time.perf_counter() - start)
