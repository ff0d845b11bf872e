"""lid_spark imported from a zip (how executors import the wheel shipped with --py-files) finds its own files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lid_spark"

PROBE = """
import json, lid_spark
from lid_spark.config import DEFAULT_CONFIG, load_config
from lid_spark.audio.spoken_lid import EMBEDDED_MODEL_DIR, verify_checksums
verify_checksums(EMBEDDED_MODEL_DIR)
print(json.dumps({"module": lid_spark.__file__, "default": str(DEFAULT_CONFIG),
                  "model": str(EMBEDDED_MODEL_DIR), "sample_rate": load_config().audio.sample_rate}))
"""


def test_a_zipped_package_reads_its_config_and_model_from_the_archive(tmp_path):
    archive = tmp_path / "lid_spark.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in PACKAGE.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, Path("lid_spark") / path.relative_to(PACKAGE))
    extracted = tmp_path / "tmp"
    extracted.mkdir()
    env = {**os.environ, "PYTHONPATH": str(archive), "TMPDIR": str(extracted)}
    env.pop("LID_SPARK_CONF_DIR", None)
    runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True,
                                      text=True, check=True, timeout=120).stdout.splitlines()[-1])
            for _ in range(2)]
    first = runs[0]
    assert first["module"].startswith(str(archive)), "lid_spark must come from the zip"
    for key in ("default", "model"):
        assert Path(first[key]).is_relative_to(extracted) and Path(first[key]).exists(), first
    assert first["sample_rate"] == 16000
    assert runs[1] == first   # the second process reuses the first one's copy
    assert len(list(extracted.glob("lid-spark-*"))) == 1
