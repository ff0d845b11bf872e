"""The pipeline on a real Spark standalone cluster, shipped and submitted as docs/byo_catalog.md tells.

A master and two workers are started from the installed PySpark's own classes, each worker its own
JVM with its own work directory (so each executor and its Python workers run in their own working
directory), all on loopback. The wheel is built from a clean copy of the tree and shipped with
``--py-files``; the executors' Python (``spark.pyspark.python``) is a fresh environment that has the
dependencies but not lid_spark, so every lid_spark module an executor runs came with the job. Delta
comes from ``--packages``, the config from ``--config``. Each stage is one spark-submit, in pipeline
order, and the tags must equal those of a local run of the same stages on the same catalog and config.

Each worker also announces one fake GPU through a discovery script, and a small application asking
for ``spark.executor.resource.gpu.amount=1`` / ``spark.task.resource.gpu.amount=1`` checks that the
worker-model helper both UDFs load through pins ``CUDA_VISIBLE_DEVICES`` to the task's GPU.

The cluster (every process group it started) is stopped at the end whatever happens.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lid_spark.config import load_config
from lid_spark.tables import read_table, resolve_table
from tests._wheel import clean_env, fresh_venv, wheel_of_this_tree

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("java") is None,
                       reason="needs Linux (/proc) and Java"),
]

STAGES = ["cooccurrence", "train_embeddings", "fit_codebook", "extract_features", "train_classifier", "tag_catalog"]
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
GPU_ADDRESSES = ("3", "5")          # the fake GPU each worker announces
WORKER_MEMORY, EXECUTOR_MEMORY, DRIVER_MEMORY = "2g", "1g", "1g"
# The vocal-segment embeddings depend a little on which tracks share a UDF batch (clips are batched
# by length, and padding moves ECAPA embeddings), and the cluster batches differently from a local
# run: the classifier's weights and scores move in the third decimal (0.004 at most when measured),
# the languages and statuses not at all.
SCORE_TOLERANCE = 0.02

# The catalog's config (what a user writes from conf/examples/my_catalog.yaml), at the smallest
# sizes that still train a classifier; `{...}` are filled in per run.
CATALOG_CONFIG = """\
inputs:
  tracks: {world}/tracks
  plays: {world}/plays
  labels: {world}/labels
tables:
  location: {out}/tables
output:
  models_dir: {out}/models      # on storage every executor reads: one machine's disk here
  report_dir: {out}/report
spark:
  shuffle_partitions: 2
  conf: {{spark.databricks.delta.snapshotPartitions: 2}}
cooccurrence:
  min_users: 1
embeddings: {{dim: 16, epochs: 2, evaluate: false, peers: []}}
audio:
  timbral: {{n_mels: 32, codebook_size: 8, fit_frames_per_track: 100}}
  segments: {{max_per_track: 2}}
  udf: {{partitions: 2}}
classifier: {{channels: 8, epochs: 4, torch_threads: 1, segments_per_track: 2}}
"""
SYNTH = {"tracks": 44, "seconds": 4.0, "users": 80, "sessions_per_user": 4.0, "workers": 1, "report": False,
         "tracks_per_artist": 1.0, "intro_seconds": [0.5, 1.0], "outro_seconds": 0.5}

GPU_PROBE = """\
import json, os
import pandas as pd
from pyspark import TaskContext
from pyspark.sql import SparkSession

def probe(batches):
    from lid_spark.udfs.worker import worker_model
    for batch in batches:
        # What extract_features_udf and tag_batches do before loading their models.
        device = worker_model("probe", None, lambda resolved: resolved, device="auto", torch_threads=0)
        yield pd.DataFrame({"task_gpus": [",".join(TaskContext.get().resources()["gpu"].addresses)],
                            "visible": [os.environ.get("CUDA_VISIBLE_DEVICES")], "device": [device],
                            "cwd": [os.getcwd()]})

spark = SparkSession.builder.getOrCreate()
rows = spark.range(4, numPartitions=4).mapInPandas(probe, "task_gpus string, visible string, device string, "
                                                          "cwd string").collect()
print("PROBE " + json.dumps([row.asDict() for row in rows]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def spark_env() -> dict:
    """The environment of every cluster process and spark-submit: loopback only, nothing of the checkout."""
    return {**clean_env(), "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1"}


@dataclass
class Cluster:
    url: str
    root: Path
    processes: list = field(default_factory=list)
    work_dirs: list = field(default_factory=list)

    def start(self, name: str, args: list, env: dict) -> None:
        log = open(self.root / f"{name}.log", "w")
        self.processes.append(subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *map(str, args)], env=env,
                                               stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self) -> None:
        for process in self.processes:
            _kill_group(process)


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process's whole group (a worker and its executors), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _alive_workers(webui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=5) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    port, webui = _free_port(), _free_port()
    cluster = Cluster(url=f"spark://127.0.0.1:{port}", root=root)
    try:
        env = spark_env()
        cluster.start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", port,
                                 "--webui-port", webui],
                      {**env, "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false"})
        for number, address in enumerate(GPU_ADDRESSES, start=1):
            work_dir = root / f"worker{number}"
            work_dir.mkdir()
            discovery = root / f"gpus{number}.sh"
            discovery.write_text(f"#!/bin/sh\necho '{{\"name\": \"gpu\", \"addresses\": [\"{address}\"]}}'\n")
            discovery.chmod(0o755)
            gpu_opts = f"-Dspark.worker.resource.gpu.amount=1 -Dspark.worker.resource.gpu.discoveryScript={discovery}"
            cluster.start(f"worker{number}", ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                              "--cores", "1", "--memory", WORKER_MEMORY, "--work-dir", work_dir,
                                              "--webui-port", _free_port(), cluster.url],
                          {**env, "SPARK_WORKER_OPTS": gpu_opts})
            cluster.work_dirs.append(work_dir)
        deadline = time.monotonic() + 180
        while _alive_workers(webui) < len(GPU_ADDRESSES):
            dead = [p.args for p in cluster.processes if p.poll() is not None]
            assert not dead and time.monotonic() < deadline, (
                f"the cluster did not come up (exited: {dead}); logs in {root}")
            time.sleep(2)
        yield cluster
    finally:
        cluster.stop()


def _listening_addresses(pids: set[int]) -> set[str]:
    """The local addresses (hex, as in /proc/net/tcp*) of the TCP sockets these processes listen on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:   # 0A: LISTEN
                    addresses.add(fields[1].split(":")[0])
    return addresses


def _is_loopback(hex_address: str) -> bool:
    if len(hex_address) == 8:                    # IPv4, little-endian: 127.x.x.x ends in 7F
        return hex_address.endswith("7F")
    return (hex_address == "0" * 31 + "1"       # ::1
            or (hex_address[:24] == "0000000000000000FFFF0000" and hex_address.endswith("7F")))   # ::ffff:127.x


def _group_pids(groups: set[int]) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) in groups:   # field 5: the process group
                pids.add(int(entry))
    return pids


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """(clean source tree, the wheel as shipped, the executors' python without lid_spark)."""
    root = tmp_path_factory.mktemp("shipped")
    env, source, wheel = wheel_of_this_tree(root)
    python = fresh_venv(root / "venv", env)
    check = subprocess.run([python, "-c", "import lid_spark"], env=env, capture_output=True, cwd=root)
    assert check.returncode != 0, "the executors' environment must not have lid_spark of its own"
    return source, wheel, python


def submit_command(cluster_url: str, py_files, python, script, *args, sized: bool = True) -> list[str]:
    """The spark-submit command of docs/byo_catalog.md; ``sized``: with this machine's memory sizes."""
    sizes = ["--driver-memory", DRIVER_MEMORY, "--executor-memory", EXECUTOR_MEMORY] if sized else []
    return ["spark-submit", "--master", cluster_url,
            "--packages", DELTA_PACKAGE,
            "--py-files", str(py_files),
            "--conf", f"spark.pyspark.python={python}",
            *sizes, str(script), *map(str, args)]


def _submit(command: list[str], cwd: Path, log: Path, timeout: float = 600) -> str:
    command = [str(spark_home() / "bin" / command[0]), *command[1:]]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=spark_env(), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _kill_group(process)
    text = log.read_text()
    assert returncode == 0, f"{command[-5:]} failed ({returncode}); log {log}:\n{text[-6000:]}"
    return text


def test_pipeline_on_a_standalone_cluster_tags_like_a_local_run(cluster, shipped, spark, tmp_path):
    from lid_spark.tools.synth.world import build_world

    source, wheel, python = shipped
    world = tmp_path / "world"
    build_world(world, SYNTH)
    (tmp_path / "driver").mkdir()   # the driver's working directory: neither the checkout nor an executor's
    catalog = tmp_path / "driver" / "my_catalog.yaml"
    catalog.write_text(CATALOG_CONFIG.format(world=world, out=tmp_path / "cluster-out"))
    configs = ["--config", source / "conf" / "cluster.yaml", "--config", catalog]

    # Spark puts .zip (and .egg) files of --py-files on the executors' Python path, not .whl ones:
    # the wheel travels under a .zip name (it is a zip file), as docs/byo_catalog.md says.
    shipped_zip = tmp_path / "driver" / "lid_spark.zip"
    shutil.copy(wheel, shipped_zip)
    seconds = {}
    for stage in STAGES:
        started = time.perf_counter()
        _submit(submit_command(cluster.url, shipped_zip, python, source / "jobs" / f"{stage}.py", *configs),
                cwd=tmp_path / "driver", log=tmp_path / f"{stage}.log")
        seconds[stage] = round(time.perf_counter() - started, 1)
    print(f"spark-submit seconds per stage: {seconds}")

    # Every executor ran in its own worker's work directory.
    executor_dirs = {p.parent for d in cluster.work_dirs for p in d.glob("app-*/*/stderr")}
    assert {d.parents[1] for d in executor_dirs} == set(cluster.work_dirs), executor_dirs
    stderr = "".join(p.read_text(errors="replace") for d in executor_dirs for p in d.glob("stderr"))
    assert "Finished task" in stderr and "Traceback" not in stderr

    # The same stages, same catalog and config, in the local session.
    cluster_cfg = load_config([source / "conf" / "cluster.yaml", catalog])
    local = tmp_path / "local-out"
    local_cfg = cluster_cfg.with_overrides([f"tables.location={local / 'tables'}",
                                            f"output.models_dir={local / 'models'}",
                                            f"output.report_dir={local / 'report'}"])
    for stage in STAGES:
        importlib.import_module(f"lid_spark.stages.{stage}").run(spark, local_cfg)

    def tags(cfg):
        frame = read_table(spark, resolve_table(cfg, "language_tags")).toPandas()
        return frame.set_index("track_id").sort_index()

    assert_same_tags(tags(cluster_cfg), tags(local_cfg), SYNTH["tracks"])


def assert_same_tags(on_cluster, in_local, tracks: int) -> None:
    """Same tracks, languages and statuses; scores within SCORE_TOLERANCE."""
    assert len(on_cluster) == len(in_local) == tracks
    assert list(on_cluster.index) == list(in_local.index)
    assert (on_cluster.language == in_local.language).all(), on_cluster.language.compare(in_local.language)
    assert (on_cluster.status == in_local.status).all(), on_cluster.status.compare(in_local.status)
    # Not model_version: it hashes the weights, which differ in the last digits (see SCORE_TOLERANCE).
    for track, a, b in zip(on_cluster.index, on_cluster.scores, in_local.scores):
        if a is None or b is None:
            assert a is None and b is None, track
            continue
        a, b = dict(a), dict(b)
        assert a.keys() == b.keys(), track
        assert max(abs(a[k] - b[k]) for k in a) <= SCORE_TOLERANCE, (track, a, b)
    assert set(on_cluster.status) & {"tagged", "low_confidence"}, "the classifier tagged nothing"


def test_a_task_given_a_gpu_pins_it_on_the_cluster(cluster, shipped, tmp_path):
    source, wheel, python = shipped
    shipped_zip = tmp_path / "lid_spark.zip"
    shutil.copy(wheel, shipped_zip)
    probe = tmp_path / "gpu_probe.py"
    probe.write_text(GPU_PROBE)
    command = submit_command(cluster.url, shipped_zip, python, probe)
    gpu_conf = ["--conf", "spark.executor.resource.gpu.amount=1", "--conf", "spark.task.resource.gpu.amount=1"]
    command[1:1] = gpu_conf
    log = _submit(command, cwd=tmp_path, log=tmp_path / "gpu_probe.log")
    rows = json.loads(next(line for line in log.splitlines() if line.startswith("PROBE "))[6:])
    assert len(rows) == 4
    for row in rows:
        assert row["task_gpus"] in GPU_ADDRESSES, row
        assert row["visible"] == row["task_gpus"] and row["device"] == "cuda:0", row
        assert not Path(row["cwd"]).is_relative_to(tmp_path), row   # an executor's own directory

    # Everything the cluster's processes listen on is loopback.
    addresses = _listening_addresses(_group_pids({p.pid for p in cluster.processes}))
    assert addresses and all(_is_loopback(a) for a in addresses), addresses


def _shown_commands(text: str) -> list[str]:
    """The spark-submit commands of a markdown text's code blocks, continuation lines joined."""
    joined = " ".join(text.replace("\\\n", " ").split())
    found, start = [], joined.find("spark-submit --master")
    while start >= 0:
        end = joined.find("```", start)
        found.append(joined[start:end].strip())
        start = joined.find("spark-submit --master", end)
    return found


def test_docs_show_the_submitted_command():
    """docs/byo_catalog.md and the README's "Spark sessions" give the command this test submits."""
    checkout = Path(__file__).resolve().parents[1]
    documented = " ".join(submit_command("spark://<master>:7077", "dist/lid_spark.zip", "/opt/lid-spark-env/bin/python",
                                         "jobs/<stage>.py", "--config", "conf/cluster.yaml", "--config",
                                         "my_catalog.yaml", sized=False))
    for name in ("docs/byo_catalog.md", "README.md"):
        text = (checkout / name).read_text(encoding="utf-8")
        assert _shown_commands(text) == [documented], name
        assert "cp dist/lid_spark-*.whl dist/lid_spark.zip" in text, name
