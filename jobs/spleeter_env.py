"""Build the Spleeter environment (.venv-spleeter) that the spleeter separation backend runs in.

Spleeter 2.4 pins Python 3.8-3.11, TensorFlow 2.12 and numpy < 2, so it gets a virtual environment of
its own, installed from requirements/spleeter.txt. Safe to rerun: an up-to-date environment is left as is.
Point audio.separation.spleeter_env at the result if it is not the checkout's .venv-spleeter.
"""

from lid_spark.jobs._cli import job_parser, run_as_script

from lid_spark.progress import get_logger
from lid_spark.tools.spleeter.env import build_spleeter_env


def main(argv=None) -> int:
    parser = job_parser("spleeter_env", __doc__)
    parser.add_argument("--env", default=None, help="environment directory (default: .venv-spleeter of the checkout)")
    parser.add_argument("--python", default="python3.11", help="interpreter for the venv: Python 3.8-3.11")
    parser.add_argument("--requirements", default=None, help="pinned requirements (default requirements/spleeter.txt)")
    args = parser.parse_args(argv)
    log = get_logger()
    result = build_spleeter_env(args.env, python=args.python, requirements=args.requirements, log=log.info)
    print(result["python"])
    return 0


if __name__ == "__main__":
    run_as_script(main)
