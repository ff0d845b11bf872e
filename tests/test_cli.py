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
