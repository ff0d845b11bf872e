import subprocess
import sys

from lid_spark.cli import available_jobs, main


def test_help_lists_jobs(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: lid-spark <job>" in out
    for job in available_jobs():
        assert job in out


def test_unknown_job_is_refused(capsys):
    assert main(["no_such_job"]) == 2
    assert "unknown job 'no_such_job'" in capsys.readouterr().err


def test_console_script_reports_config_errors_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "lid_spark.cli", "demo", "cooccurrence.min_sesions=2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "lid-spark: error:" in proc.stderr and "min_sesions" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_job_file_runs_as_spark_submit_entry_point_help():
    proc = subprocess.run([sys.executable, "jobs/demo.py", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--config" in proc.stdout and "key=value" in proc.stdout


def test_pyspark_is_an_extra_so_a_runtime_keeps_its_own():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    required = {dep.split(">")[0].split("=")[0].split("<")[0].strip() for dep in project["dependencies"]}
    assert not required & {"pyspark", "delta-spark"}
    assert {dep.split(">")[0].split("=")[0] for dep in project["optional-dependencies"]["spark"]} == {
        "pyspark", "delta-spark"}


def test_missing_pyspark_is_one_line_naming_the_extra():
    # A Python without pyspark on its path: the command says how to install it, without a traceback.
    code = ("import importlib.util, sys; real = importlib.util.find_spec; "
            "importlib.util.find_spec = lambda name, *a: None if name == 'pyspark' else real(name, *a); "
            "from lid_spark.cli import main; sys.exit(main(['cooccurrence']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lid-spark: PySpark is not installed here. Install it with the package, pip install 'lid-spark[spark]' "
        "(a Databricks runtime or Spark image provides its own)"]
