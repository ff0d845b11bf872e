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

def _proc_stats() -> dict[tuple[int, int], tuple[int, float, float]]:
    """(pid, start tick) -> (parent pid, own CPU seconds, reaped children's CPU seconds), from /proc."""
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                text = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = text[text.rindex(")") + 2:].split()   # after "pid (comm) "; comm may hold spaces
        # stat fields 4 (ppid), 14-17 (utime, stime, cutime, cstime), 22 (start time): here 1, 11-14, 19
        stats[(int(name), int(fields[19]))] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks,
                                               (int(fields[13]) + int(fields[14])) / ticks)
    return stats


class TreeCPU:
    """CPU seconds (user + system) used by a process and all its descendants since ``start()``.

    A thread samples /proc every ``interval_s`` and keeps each descendant's last reading, so the
    time of a process that exits between samples is kept even when its parent never collects it
    (Spark's Python daemon ignores SIGCHLD: its exited workers' time reaches no parent). A
    parent's reaped-children time counts only beyond what its sampled exited children already
    account for, so nothing is counted twice. Without /proc (not Linux) ``resource.getrusage`` of
    this process and its reaped children.

    Example
    -------
    >>> with TreeCPU() as cpu:
    ...     _ = sum(i * i for i in range(300000))
    >>> cpu.seconds() > 0
    True
    """

    def __init__(self, root: int | None = None, interval_s: float = 0.25):
        import os
        import threading

        self.root = os.getpid() if root is None else root
        self.interval_s = interval_s
        self._seen: dict[tuple[int, int], tuple[int, float, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._proc = os.path.isdir("/proc")
        self._alive: set[tuple[int, int]] = set()

    def sample(self) -> None:
        if not self._proc:
            return
        stats = _proc_stats()
        children: dict[int, list[tuple[int, int]]] = {}
        for key, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(key)
        with self._lock:
            todo = [k for k in stats if k[0] == self.root]
            while todo:
                key = todo.pop()
                self._seen[key] = stats[key]
                todo.extend(children.get(key[0], []))
            self._alive = set(stats)

    def seconds(self) -> float:
        """CPU seconds of the tree so far (every process ever sampled, alive or not)."""
        import resource

        if not self._proc:
            usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            return sum(u.ru_utime + u.ru_stime for u in usage)
        self.sample()
        with self._lock:
            exited_by_parent: dict[int, float] = {}
            for key, (ppid, own, reaped) in self._seen.items():
                if key not in self._alive:
                    exited_by_parent[ppid] = exited_by_parent.get(ppid, 0.0) + own + reaped
            return sum(own + max(0.0, reaped - exited_by_parent.get(key[0], 0.0))
                       for key, (_, own, reaped) in self._seen.items())

    def start(self) -> TreeCPU:
        import threading

        self.sample()

        def loop():
            while not self._stop.wait(self.interval_s):
                self.sample()

        self._thread = threading.Thread(target=loop, name="tree-cpu", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> TreeCPU:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def tree_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds of ``root`` (default: this process) and its live descendants, with their reaped children.

    One reading, no sampling: time of descendants that exited uncollected is missing (use :class:`TreeCPU`).
    """
    return TreeCPU(root).seconds()


class StageCost:
    """Wall and CPU seconds (this process and its descendants, :class:`TreeCPU`) of blocks of code, by name.

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
        self._cpu = TreeCPU()

    def measure(self, name: str):
        import contextlib
        import time

        @contextlib.contextmanager
        def block():
            if self._cpu._thread is None:
                self._cpu.start()
            wall, cpu = time.perf_counter(), self._cpu.seconds()
            try:
                yield
            finally:
                entry = self.seconds.setdefault(name, {"wall": 0.0, "cpu": 0.0})
                entry["wall"] += time.perf_counter() - wall
                entry["cpu"] += max(0.0, self._cpu.seconds() - cpu)
        return block()

    def total(self) -> dict[str, float]:
        return {k: sum(e[k] for e in self.seconds.values()) for k in ("wall", "cpu")}
