"""Build Spleeter's own Python environment (``lid-spark spleeter_env``): idempotent and checked.

A virtual environment is created with a Python 3.8-3.11 interpreter, the pinned requirements shipped
with the package (``lid_spark/tools/spleeter/requirements.txt``; ``requirements/spleeter.txt`` of the
checkout links to it) are installed into it, ``import spleeter, tensorflow`` is checked, and a stamp file
records the hash of the requirements. Running it again with the same requirements is a no-op that
returns at once; changed requirements are installed over the existing environment.

Example
-------
>>> build_spleeter_env("/nonexistent/env", python="/nonexistent/python3.11")
Traceback (most recent call last):
...
lid_spark.errors.ParameterError: spleeter_env: no Python interpreter /nonexistent/python3.11 ...
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lid_spark.audio.separation.spleeter_process import DEFAULT_ENV
from lid_spark.errors import ParameterError
from lid_spark.package_data import package_path

# Inside the package, so that an installed wheel builds the environment too.
REQUIREMENTS = package_path("tools", "spleeter", "requirements.txt")
STAMP = ".lid-spark-spleeter"
SUPPORTED = ((3, 8), (3, 11))   # Spleeter 2.4.2: Python >= 3.8, < 3.12


def build_spleeter_env(env_dir: str | os.PathLike | None = None, python: str = "python3.11",
                       requirements: str | os.PathLike | None = None, log=print) -> dict:
    """Create (or bring up to date) the Spleeter environment.

    Parameters
    ----------
    env_dir : path, optional
        The environment's directory (default ``.venv-spleeter`` in the project checkout).
    python : str
        Interpreter that creates the venv (name on PATH or path); must be Python 3.8-3.11.
    requirements : path, optional
        Pinned requirements (default: the package's ``tools/spleeter/requirements.txt``).
    log : callable
        Receives one line per step.

    Returns
    -------
    dict with ``python`` (the environment's interpreter), ``built`` (False when it was already up to
    date) and ``seconds``.

    Raises
    ------
    ParameterError
        No such interpreter, an unsupported Python version, or missing requirements.
    RuntimeError
        pip or the import check failed (the message holds the end of the output).
    """
    started = time.perf_counter()
    env = Path(env_dir).absolute() if env_dir else DEFAULT_ENV
    requirements = Path(requirements) if requirements else REQUIREMENTS
    if not requirements.is_file():
        raise ParameterError(f"spleeter_env: no requirements file {requirements}")
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    env_python = env / "bin" / "python"
    stamp = env / STAMP
    if env_python.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        log(f"Spleeter environment {env} is up to date")
        return {"python": str(env_python), "built": False, "seconds": time.perf_counter() - started}
    interpreter = shutil.which(python) or (python if Path(python).is_file() else None)
    if interpreter is None:
        raise ParameterError(f"spleeter_env: no Python interpreter {python} (Spleeter needs Python 3.8-3.11; "
                             "pass --python)")
    version = _version(interpreter)
    if not SUPPORTED[0] <= version <= SUPPORTED[1]:
        raise ParameterError(f"spleeter_env: {interpreter} is Python {version[0]}.{version[1]}; Spleeter 2.4 "
                             "needs Python 3.8-3.11 (pass --python)")
    if not env_python.is_file():
        log(f"creating {env} with {interpreter}")
        _run([interpreter, "-m", "venv", str(env)])
    log(f"installing {requirements} into {env} (TensorFlow: a few minutes the first time)")
    _run([str(env_python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)])
    _run([str(env_python), "-c", "import spleeter.separator, tensorflow"],
         extra_env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    stamp.write_text(digest + "\n")
    seconds = time.perf_counter() - started
    log(f"Spleeter environment ready: {env_python} ({seconds:.0f} s)")
    return {"python": str(env_python), "built": True, "seconds": seconds}


def _version(interpreter: str) -> tuple[int, int]:
    out = subprocess.run([interpreter, "-c", "import sys; print(*sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def _run(command: list[str], extra_env: dict | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra_env or {})
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {result.returncode}):\n{tail}")


if __name__ == "__main__":  # python -m lid_spark.tools.spleeter.env [env_dir]
    build_spleeter_env(sys.argv[1] if len(sys.argv) > 1 else None)
