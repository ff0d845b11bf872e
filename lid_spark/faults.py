"""Fault injection for the reliability tests: kill this process at a named point of a write.

When the environment variable :data:`KILL_AT` names a point (``extract_features:after:vocal_segments``,
``codebook:files_written``, ...), the process that reaches that point kills itself with SIGKILL, as
a driver lost to a preempted node or the OOM killer would die: no ``finally``, no atexit, no flush.
Unset (always, outside the tests) :func:`fault_point` is one dictionary lookup.

Example
-------
>>> fault_point("nowhere")  # KILL_AT is not set: nothing happens
"""

from __future__ import annotations

import os
import signal

KILL_AT = "LID_SPARK_TEST_FAULT_KILL_AT"


def fault_point(name: str) -> None:
    """SIGKILL this process when :data:`KILL_AT` equals ``name``; otherwise do nothing."""
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
