"""Files shipped inside the package (the config schema, the embedded model), as real paths on disk.

An installed package has them beside its modules. When the package is imported from an archive
instead (the wheel shipped with ``spark-submit --py-files``, which Python imports as a zip), they
are extracted once into a directory under the temporary directory, named by the archive's path,
size and time, so every Python worker of a node shares one copy and a new wheel gets a new one.

Example
-------
>>> package_path("conf", "default.yaml").is_file()
True
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from lid_spark import __version__

_PACKAGE = "lid_spark"


def package_path(*parts: str) -> Path:
    """The file or directory ``lid_spark/<parts...>`` as a path that ``open`` and other programs can read."""
    here = Path(__file__).resolve().parent
    target = here.joinpath(*parts)
    if target.exists():
        return target
    archive = _archive_of(here)
    if archive is None:
        return target   # not shipped at all: let the caller say what is missing
    stat = archive.stat()
    key = hashlib.sha256(f"{archive}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"lid-spark-{__version__}-{key}"
    extracted = root.joinpath(*parts)
    if not extracted.exists():
        _extract(files(_PACKAGE).joinpath(*parts), extracted)
    return extracted


def _archive_of(path: Path) -> Path | None:
    """The zip file that ``path`` (a path inside it) lies in, if any."""
    for parent in path.parents:
        if parent.is_file():
            return parent if zipfile.is_zipfile(parent) else None
    return None


def _extract(source: Traversable, dest: Path) -> None:
    """Copy ``source`` (a file or directory inside the archive) to ``dest`` atomically: workers of one node
    extracting at once each write a private copy and the first rename wins."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        _copy(source, staging / dest.name)
        try:
            os.rename(staging / dest.name, dest)
        except OSError:
            if not dest.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy(source: Traversable, dest: Path) -> None:
    if source.is_dir():
        dest.mkdir()
        for child in source.iterdir():
            _copy(child, dest / child.name)
    else:
        dest.write_bytes(source.read_bytes())
