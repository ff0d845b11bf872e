"""Peak resident memory of one block of code in a long-lived process (ru_maxrss only knows the whole run).

A background thread samples the process's resident set size from /proc every few milliseconds.
``grown_mb`` is the peak minus the resident size when the block began: what the block needed on top
of what the process already held.

Example
-------
>>> with PeakRSS() as peak:
...     block = bytearray(50 << 20)
>>> peak.grown_mb > 40
True
"""

from __future__ import annotations

import os
import threading

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def resident_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * _PAGE_MB


class PeakRSS:
    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.start_mb = self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, resident_mb())

    def __enter__(self) -> PeakRSS:
        self.start_mb = self.peak_mb = resident_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, resident_mb())

    @property
    def grown_mb(self) -> float:
        return self.peak_mb - self.start_mb
