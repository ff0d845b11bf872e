"""Run a function over many inputs in worker processes, results in input order.

Example
-------
>>> list(map_in_processes(pow, [(2, 3), (3, 2)], workers=1))
[8, 9]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator


def map_in_processes(fn: Callable, calls: Iterable[tuple], workers: int) -> Iterator:
    """``fn(*args)`` for each ``args`` of ``calls``, yielded in order.

    With ``workers`` > 1 the calls run in that many *spawned* processes (the caller may hold a JVM,
    an initialised espeak-ng engine or torch thread pools, none of them fork-safe); ``fn`` must be
    importable at module level. With 1 they run here, one after the other.
    """
    calls = list(calls)
    if workers <= 1 or len(calls) < 2:
        for args in calls:
            yield fn(*args)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(calls)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(fn, *args) for args in calls]
        for future in futures:
            yield future.result()
