"""The ``lid-spark`` command: ``lid-spark <job> [--config FILE ...] [key=value ...]``.

Every job is a module ``jobs/<job>.py`` with ``main(argv)``; the same module is a spark-submit
entry point (``spark-submit jobs/<job>.py --config conf/cluster.yaml``).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from lid_spark.config import Config, load_config


def available_jobs() -> dict[str, str]:
    """Job name -> first line of its docstring."""
    import jobs

    found = {}
    for info in pkgutil.iter_modules(jobs.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"jobs.{info.name}")
        if hasattr(module, "main"):
            found[info.name] = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
    return dict(sorted(found.items()))


def job_parser(name: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every job takes; jobs add their own."""
    parser = argparse.ArgumentParser(
        prog=f"lid-spark {name}", description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Settings: key=value overrides any key of conf/default.yaml, e.g. spark.shuffle_partitions=16",
    )
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML file layered over conf/default.yaml (repeatable)")
    parser.add_argument("settings", nargs="*", metavar="key=value", help="configuration overrides")
    return parser


def parse_job_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                   extra_overrides: Sequence[str] = ()) -> tuple[argparse.Namespace, Config]:
    args = parser.parse_args(argv)
    cfg = load_config(args.config, list(extra_overrides) + list(args.settings))
    return args, cfg


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    jobs_help = "\n".join(f"  {name:<20} {doc}" for name, doc in available_jobs().items())
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: lid-spark <job> [--config FILE ...] [key=value ...]\n\n"
              "Tag every track of a music catalog with its singing language, on Apache Spark.\n\n"
              f"jobs:\n{jobs_help}\n\n`lid-spark <job> --help` describes one job.")
        return 0
    if argv[0] in ("-V", "--version"):
        from lid_spark import __version__

        print(f"lid-spark {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in available_jobs():
        print(f"lid-spark: unknown job {name!r}. Jobs:\n{jobs_help}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"jobs.{name}")
    return int(module.main(rest) or 0)


def run_job(main_fn) -> None:
    """Run a job's main() as a script, turning our error types into one clear line and exit code 2."""
    from lid_spark.errors import InputError, ParameterError

    try:
        sys.exit(main_fn())
    except (ParameterError, InputError) as e:
        print(f"lid-spark: error: {e}", file=sys.stderr)
        sys.exit(2)


def console() -> None:
    """The ``lid-spark`` console script."""
    run_job(main)


if __name__ == "__main__":
    console()
