"""Write an artifact directory so that readers see the old one or the new one, never a half-written one.

The files go to a temporary sibling directory (same parent, so the same filesystem), which is then
renamed into place. POSIX cannot rename a directory over a non-empty one, so an existing artifact is
first renamed aside and removed after the swap: a process killed while the files are written leaves
the old artifact untouched (and a ``.<name>.tmp-*`` directory, removed by a save a day later); killed in
the instant between the two renames, it leaves no artifact at the path (the loader says "missing")
and the old one beside it as ``.<name>.old-*``.

Example
-------
>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "model"
>>> with replace_directory(target) as tmp:
...     _ = (tmp / "weights.txt").write_text("new")
>>> (target / "weights.txt").read_text(), sorted(p.name for p in target.parent.iterdir())
('new', ['model'])
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lid_spark.faults import fault_point

STALE_SECONDS = 24 * 3600.0


@contextmanager
def replace_directory(directory: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory; on a clean exit it atomically becomes ``directory``.

    On an exception the temporary directory is removed and ``directory`` is left as it was.
    """
    target = Path(directory).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        # Left by a killed writer; a day old, so never the directory of a writer still at work.
        if time.time() - stale.stat().st_mtime > STALE_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fault_point(f"replace_directory:{target.name}:files_written")
    olds = []
    for attempt in range(3):
        if target.exists():
            olds.append(target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}")
            os.replace(target, olds[-1])
        try:
            os.replace(tmp, target)
            break
        except OSError:  # a concurrent save put its directory there in between: set it aside too
            if attempt == 2:
                raise
    _fsync_dir(target.parent)
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


def replace_file(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary sibling file renamed into place (atomic)."""
    target = Path(path)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_tree(directory: Path) -> None:
    # The rename must not reach the disk before the files' contents do.
    for path in directory.iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform or filesystem without directory handles: nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
