"""The wheel of this tree and fresh virtual environments to run it in, outside the checkout.

A fresh environment sees the test environment's dependencies (torch, pyspark, ...) through a ``.pth``
file listing its site-packages directories, so nothing heavy is installed. A path line in a ``.pth``
adds the directory only: the ``.pth`` files in those directories (an editable finder for lid_spark)
are not run, so ``lid_spark`` can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def run(command: list, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``command``; its output is in the assertion message when it fails."""
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def clean_env() -> dict:
    """This process's environment without what would point a child at the checkout or this interpreter."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def can_copy_source() -> bool:
    return shutil.which("git") is not None and (CHECKOUT / ".git").exists()


def copy_source(dest: Path) -> Path:
    """The files a release of this tree holds (tracked or not ignored), symlinks kept: a clean source tree,
    so no stale build/ output of the checkout ends up in the wheel."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=CHECKOUT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, target = CHECKOUT / name, dest / name
        if not (source.exists() or source.is_symlink()):
            continue   # deleted in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    return dest


def wheel_of_this_tree(root: Path) -> tuple[dict, Path, Path]:
    """(clean environment, clean source copy under ``root/src``, its wheel under ``root/dist``);
    skips the calling test where the tree is not a git checkout."""
    import pytest

    if not can_copy_source():
        pytest.skip("needs the git checkout to list the source files")
    env = clean_env()
    source = copy_source(root / "src")
    (root / "dist").mkdir()
    return env, source, build_wheel(source, root / "dist", env)


def build_wheel(source: Path, dist: Path, env: dict) -> Path:
    """``pip wheel --no-deps`` of ``source`` into ``dist``, as the README tells; the one wheel built."""
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w", dist, source],
        cwd=dist.parent, env=env, timeout=300)
    wheels = list(dist.glob("lid_spark-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def dependency_dirs() -> list[str]:
    """The site-packages directories this interpreter imports its dependencies from: its environment's own
    and any that its ``.pth`` files add (never the checkout itself, which pytest puts on the path)."""
    dirs = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    return list(dict.fromkeys(dirs))


def fresh_venv(venv: Path, env: dict, wheel: Path | None = None) -> Path:
    """A new virtual environment at ``venv`` (with ``wheel`` installed, if given) whose dependencies come
    from this interpreter's; returns its python."""
    run([sys.executable, "-m", "venv", venv], cwd=venv.parent, env=env)
    python = venv / "bin" / "python"
    if wheel is not None:
        run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--disable-pip-version-check", wheel],
            cwd=venv.parent, env=env)
    # Only now the dependencies become visible (so pip above saw none of them).
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=venv.parent, env=env).stdout.strip())
    (site / "zz_main_dependencies.pth").write_text("".join(f"{d}\n" for d in dependency_dirs()))
    return python
