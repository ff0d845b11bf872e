"""databricks.yml (the asset bundle) parses, and every task runs a real job with parameters it accepts.

`databricks bundle validate` needs a workspace; this checks what it would not: each wheel task calls a
console script the wheel declares, names a lid-spark job, and passes arguments that job's own parser
accepts and configs that validate; each notebook task runs a notebook of the checkout with parameters
it declares; the stage tasks form the pipeline in order, and the library is the wheel the bundle builds.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from lid_spark.cli import available_jobs

CHECKOUT = Path(__file__).resolve().parents[1]
BUNDLE = CHECKOUT / "databricks.yml"
STAGES = ["cooccurrence", "train_embeddings", "fit_codebook", "extract_features", "train_classifier", "tag_catalog"]


class _Parsed(Exception):
    """Raised instead of running the job once its arguments and configuration were accepted."""


def _bundle() -> dict:
    return yaml.safe_load(BUNDLE.read_text(encoding="utf-8"))


def _substitute(value: str, bundle: dict) -> str:
    """``${var.x}`` -> the variable's default; ``${workspace.file_path}`` -> the checkout (the bundle's
    files are synced there)."""
    variables = {name: str(spec.get("default")) for name, spec in bundle.get("variables", {}).items()}

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name == "workspace.file_path":
            return str(CHECKOUT)
        assert name.startswith("var.") and name[4:] in variables, f"unknown substitution ${{{name}}}"
        return variables[name[4:]]

    return re.sub(r"\$\{([^}]+)\}", replace, value)


def _tasks() -> dict[str, dict]:
    jobs = _bundle()["resources"]["jobs"]
    return {f"{job}.{task['task_key']}": task for job, spec in jobs.items() for task in spec["tasks"]}


def test_the_bundle_parses_and_builds_the_wheel_it_installs():
    bundle = _bundle()
    assert bundle["bundle"]["name"]
    (artifact,) = bundle["artifacts"].values()
    assert artifact["type"] == "whl" and (CHECKOUT / artifact.get("path", ".") / "pyproject.toml").is_file()
    assert "wheel" in artifact["build"] and "-w dist" in artifact["build"]
    for key, task in _tasks().items():
        assert {"whl": "./dist/*.whl"} in task["libraries"], f"{key} does not install the wheel"
        cluster = task["job_cluster_key"]
        job = bundle["resources"]["jobs"][key.split(".")[0]]
        assert cluster in {c["job_cluster_key"] for c in job["job_clusters"]}, key


def test_the_pipeline_job_runs_every_stage_in_order():
    job = _bundle()["resources"]["jobs"]["lid_spark_pipeline"]
    wheel_tasks = [t for t in job["tasks"] if "python_wheel_task" in t]
    assert [t["python_wheel_task"]["parameters"][0] for t in wheel_tasks] == STAGES
    previous = None
    for task in job["tasks"]:
        depends = [d["task_key"] for d in task.get("depends_on", [])]
        assert depends == ([previous] if previous else []), task["task_key"]
        previous = task["task_key"]


def test_every_wheel_task_names_a_console_script_and_a_job_that_accepts_its_parameters(monkeypatch):
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    scripts = project["scripts"]
    bundle = _bundle()
    jobs = available_jobs()
    checked = 0
    for key, task in _tasks().items():
        if "python_wheel_task" not in task:
            continue
        wheel_task = task["python_wheel_task"]
        # Databricks finds the entry point in the installed distribution's metadata by name.
        assert re.sub(r"[-_.]+", "_", wheel_task["package_name"]) == re.sub(r"[-_.]+", "_", project["name"]), key
        assert scripts.get(wheel_task["entry_point"]) == "lid_spark.cli:console", key
        argv = [_substitute(str(p), bundle) for p in wheel_task["parameters"]]
        name, rest = argv[0], argv[1:]
        assert name in jobs, f"{key}: {name} is not a lid-spark job"
        module = importlib.import_module(f"lid_spark.jobs.{name}")
        real = module.parse_job_args
        seen = {}

        def parse_then_stop(parser, args, extra_overrides=(), real=real, seen=seen):
            # The job's parser with these arguments and the configs they name (the catalog's file is
            # the example that users copy), then stop before any Spark session.
            files = ["conf/examples/my_catalog.yaml" if a == bundle["variables"]["catalog_config"]["default"] else a
                     for a in args]
            seen["args"], seen["cfg"] = real(parser, [str(CHECKOUT / f) if f.startswith("conf/") else f
                                                      for f in files], extra_overrides)
            raise _Parsed

        monkeypatch.setattr(module, "parse_job_args", parse_then_stop)
        with pytest.raises(_Parsed):
            module.main(rest)
        assert [Path(f).name for f in seen["args"].config] == ["databricks.yaml", "my_catalog.yaml"], key
        assert seen["cfg"].output.models_dir.startswith("/"), key
        checked += 1
    assert checked == len(STAGES)


def test_every_notebook_task_runs_a_notebook_with_parameters_it_declares():
    for key, task in _tasks().items():
        if "notebook_task" not in task:
            continue
        notebook = CHECKOUT / task["notebook_task"]["notebook_path"]
        assert notebook.is_file(), key
        source = notebook.read_text(encoding="utf-8")
        assert source.startswith("# Databricks notebook source"), key
        tree = ast.parse(source)
        declared = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                        and any(getattr(t, "id", None) == "PARAMETERS" for t in node.targets))
        assert set(task["notebook_task"].get("base_parameters", {})) <= set(declared), key
