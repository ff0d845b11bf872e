"""The ``lid-spark`` command: ``lid-spark <job> [--config FILE ...] [key=value ...]``.

Every job is a module ``jobs/<job>.py`` (installed as ``lid_spark.jobs.<job>``) with ``main(argv)``;
the same file is a spark-submit entry point (``spark-submit jobs/<job>.py --config conf/cluster.yaml``).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Sequence

import lid_spark.jobs
from lid_spark import __version__
from lid_spark.jobs._cli import run_as_script


def available_jobs() -> dict[str, str]:
    """Job name -> first line of its docstring."""
    found = {}
    for info in pkgutil.iter_modules(lid_spark.jobs.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"lid_spark.jobs.{info.name}")
        if hasattr(module, "main"):
            found[info.name] = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
    return dict(sorted(found.items()))


NO_PYSPARK = ("lid-spark: PySpark is not installed here. Install it with the package, "
              "pip install 'lid-spark[spark]' (a Databricks runtime or Spark image provides its own)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if importlib.util.find_spec("pyspark") is None:  # every job imports it: one line, not a traceback
        print(NO_PYSPARK, file=sys.stderr)
        return 2
    jobs_help = "\n".join(f"  {name:<20} {doc}" for name, doc in available_jobs().items())
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: lid-spark <job> [--config FILE ...] [key=value ...]\n\n"
              "Tag every track of a music catalog with its singing language, on Apache Spark.\n\n"
              f"jobs:\n{jobs_help}\n\n`lid-spark <job> --help` describes one job.")
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"lid-spark {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in available_jobs():
        print(f"lid-spark: unknown job {name!r}. Jobs:\n{jobs_help}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"lid_spark.jobs.{name}")
    return int(module.main(rest) or 0)


def console() -> None:
    """The ``lid-spark`` console script."""
    run_as_script(main)


if __name__ == "__main__":
    console()
