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


# ---------------------------------------------------------------- CPU time of a process tree

def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children) from /proc/<pid>/stat."""
    import os

    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:  # gone meanwhile
        return None
    fields = text[text.rindex(")") + 2:].split()   # after "pid (comm) "; comm may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[1] is ppid; utime, stime, cutime, cstime are fields 14-17 of stat (11-14 here)
    return int(fields[1]), sum(int(v) for v in fields[11:15]) / ticks


def tree_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds (user + system) of ``root`` (default: this process) and all its descendants.

    Live descendants (Spark's JVM and its Python workers, which stay up between stages) are read
    from /proc; exited ones count through their parent's reaped-children time, so a process that
    ended is neither lost nor counted twice. Without /proc (not Linux), ``resource.getrusage`` of
    this process and its reaped children.
    """
    import os
    import resource

    root = os.getpid() if root is None else root
    if not os.path.isdir("/proc"):
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return sum(u.ru_utime + u.ru_stime for u in usage)
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _proc_stat(int(name))
            if stat is not None:
                stats[int(name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


class StageCost:
    """Wall and CPU seconds (this process and its descendants) of blocks of code, by name.

    Example
    -------
    >>> cost = StageCost()
    >>> with cost.measure("busy"):
    ...     _ = sum(i * i for i in range(200000))
    >>> cost.seconds["busy"]["cpu"] >= 0 and cost.seconds["busy"]["wall"] > 0
    True
    """

    def __init__(self):
        self.seconds: dict[str, dict[str, float]] = {}

    def measure(self, name: str):
        import contextlib
        import time

        @contextlib.contextmanager
        def block():
            wall, cpu = time.perf_counter(), tree_cpu_seconds()
            try:
                yield
            finally:
                entry = self.seconds.setdefault(name, {"wall": 0.0, "cpu": 0.0})
                entry["wall"] += time.perf_counter() - wall
                entry["cpu"] += max(0.0, tree_cpu_seconds() - cpu)
        return block()

    def total(self) -> dict[str, float]:
        return {k: sum(e[k] for e in self.seconds.values()) for k in ("wall", "cpu")}
