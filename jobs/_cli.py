"""What every job shares: its argument parser, the configuration it builds, and its exit on bad input.

The configuration is loaded and validated here, on the driver, before any Spark session starts:
a wrong key, type or value stops the job within a second with one line naming the key.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence

from lid_spark.config import Config, load_config
from lid_spark.errors import InputError, ParameterError


def job_parser(name: str, description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every job takes; jobs add their own."""
    parser = argparse.ArgumentParser(
        prog=f"lid-spark {name}", description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Settings: key=value overrides any key of default.yaml, e.g. spark.shuffle_partitions=16",
    )
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML file layered over the package's default.yaml (repeatable)")
    parser.add_argument("--verbose", action="store_true",
                        help="on an error, also print the Python traceback (the one-line message always comes)")
    parser.add_argument("settings", nargs="*", metavar="key=value", help="configuration overrides")
    return parser


def parse_job_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                   extra_overrides: Sequence[str] = ()) -> tuple[argparse.Namespace, Config]:
    """The parsed arguments and the validated configuration (files, then ``extra_overrides``, then ``key=value``)."""
    args = parser.parse_args(argv)
    cfg = load_config(args.config, list(extra_overrides) + list(args.settings))
    return args, cfg


def run_as_script(main: Callable[[], int]) -> None:
    """Run a job's ``main()`` as a script: our error types become one line on stderr and exit code 2."""
    try:
        sys.exit(main())
    except (ParameterError, InputError) as e:
        logging.getLogger("lid_spark").debug("stopped on bad input", exc_info=True)
        if "--verbose" in sys.argv[1:]:
            traceback.print_exc()
        print(f"lid-spark: error: {e}", file=sys.stderr)
        sys.exit(2)
