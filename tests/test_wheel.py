"""The installed wheel works on its own: built from the tree, installed in a fresh virtual environment
outside the checkout, run from elsewhere. It must find its default.yaml, its jobs and udfs, and the
Spleeter requirements inside the package, never in the checkout.

The new environment sees the main environment's dependencies (torch, pyspark, ...) through a ``.pth``
file (tests/_wheel.py), so ``lid_spark`` can only come from the wheel, which the checks below assert.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests._wheel import CHECKOUT, fresh_venv, wheel_of_this_tree
from tests._wheel import run as _run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv directory, environment for its commands, a working directory outside the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    env, _, wheel = wheel_of_this_tree(root)
    venv = root / "venv"
    fresh_venv(venv, env, wheel)
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
    assert bad.returncode == 2 and "must be one of pretrained, softmask, spleeter" in bad.stderr, bad.stderr
    assert time.perf_counter() - started < 90
