"""The installed wheel works on its own: built from the tree, installed in a fresh virtual environment
outside the checkout, run from elsewhere. It must find its default.yaml, its jobs and udfs, and the
Spleeter requirements inside the package, never in the checkout.

The new environment sees the main environment's dependencies (torch, pyspark, ...) through a ``.pth``
line naming the main site-packages, so nothing heavy is installed. A path line in a ``.pth`` adds the
directory only: the main environment's own ``.pth`` files (its editable finder for lid_spark) are not
run, so ``lid_spark`` can only come from the wheel, which the checks below assert.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def _copy_source(dest: Path) -> Path:
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


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv directory, environment for its commands, a working directory outside the checkout)."""
    if shutil.which("git") is None or not (CHECKOUT / ".git").exists():
        pytest.skip("needs the git checkout to list the source files")
    root = tmp_path_factory.mktemp("wheel")
    source = _copy_source(root / "src")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w",
          root / "dist", source], cwd=root, env=env, timeout=300)
    wheels = list((root / "dist").glob("lid_spark-*.whl"))
    assert len(wheels) == 1, wheels

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=root, env=env)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--disable-pip-version-check", wheels[0]],
         cwd=root, env=env)
    # Only now the main environment's packages become visible (so pip above saw none of them).
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=root, env=env).stdout.strip())
    (site / "zz_main_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = root / "work"
    work.mkdir()
    return venv, env, work


def test_installed_wheel_runs_outside_the_checkout(installed):
    venv, env, work = installed
    started = time.perf_counter()
    where = json.loads(_run([venv / "bin" / "python", "-c", (
        "import json, lid_spark, lid_spark.jobs, lid_spark.udfs, lid_spark.config as c;"
        "import lid_spark.tools.spleeter.env as s;"
        "print(json.dumps({'lid_spark': lid_spark.__file__, 'jobs': lid_spark.jobs.__file__,"
        " 'udfs': lid_spark.udfs.__file__, 'default': str(c.DEFAULT_CONFIG), 'requirements': str(s.REQUIREMENTS),"
        " 'default_ok': c.DEFAULT_CONFIG.is_file(), 'requirements_ok': s.REQUIREMENTS.is_file()}))")],
        cwd=work, env=env).stdout)
    for name in ("lid_spark", "jobs", "udfs", "default", "requirements"):
        path = Path(where[name]).resolve()
        assert path.is_relative_to(venv.resolve()), f"{name} resolves to {path}, not inside {venv}"
        assert not path.is_relative_to(CHECKOUT), f"{name} resolves into the checkout: {path}"
    assert where["default_ok"] and where["requirements_ok"], where
    assert "softmask" in Path(where["default"]).read_text()
    assert "spleeter==" in Path(where["requirements"]).read_text()

    lid_spark = venv / "bin" / "lid-spark"
    help_text = _run([lid_spark, "--help"], cwd=work, env=env).stdout
    assert "tag_catalog" in help_text and "synth" in help_text
    assert "--config" in _run([lid_spark, "tag_catalog", "--help"], cwd=work, env=env).stdout

    out = work / "world"
    # synth.bot_share=0: with bots (a 3000-play session each) 20 users need more than 400 plays
    _run([lid_spark, "synth", "--out", out, "--sessions-only", "--tracks", "50", "--users", "20", "--plays", "400",
          "synth.bot_share=0"], cwd=work, env=env, timeout=120)
    for table in ("tracks", "plays", "labels"):
        assert list((out / table).glob("*.parquet")), f"synth wrote no {table}"

    bad = subprocess.run([lid_spark, "extract_features", "audio.separation.backend=spleter"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "must be one of softmask, spleeter" in bad.stderr, bad.stderr
    assert time.perf_counter() - started < 90
