"""The end-to-end demo: synthesize a catalog, run every stage on it in local Spark, show the results."""

from __future__ import annotations

import json
from pathlib import Path

from lid_spark.config import CONF_DIR, Config, load_config
from lid_spark.progress import get_logger, step
from lid_spark.spark import get_spark
from lid_spark.sql import create_current_tags_view, run_query
from lid_spark.stages import PIPELINE
from lid_spark.tools.synth.world import build_world

log = get_logger(__name__)

# The demo's own settings, layered over default.yaml before the user's files and overrides.
DEMO_CONFIG = CONF_DIR / "demo.yaml"


def demo_config(out: Path, files=(), overrides=()) -> Config:
    """The demo's configuration: default.yaml, conf/demo.yaml, ``files``, then outputs under ``out``
    (``out/tables``, ``out/report``, ``out/models``), then ``overrides`` (``key=value``)."""
    out = Path(out).resolve()
    paths = [f"tables.location={out / 'tables'}", f"output.report_dir={out / 'report'}",
             f"output.models_dir={out / 'models'}"]
    return load_config([DEMO_CONFIG, *files], [*paths, *overrides])


def catalog_config(cfg: Config, catalog_dir: Path) -> Config:
    """``cfg`` pointed at a synthetic catalog written by ``lid-spark synth --out catalog_dir``."""
    return cfg.with_overrides([f"inputs.{name}={catalog_dir / name}" for name in ("tracks", "plays", "labels")]
                              + [f"evaluation.instrumental_truth={catalog_dir / 'truth'}"])


def run(cfg: Config, out: Path) -> dict:
    """Synthesize a catalog under ``out``, run every stage on it; returns each stage's report."""
    out = Path(out)
    with step("start local Spark with Delta Lake"):
        spark = get_spark(cfg)
    catalog = out / "catalog"
    with step(f"synthesize a catalog of {cfg.synth.tracks} tracks into {catalog}"):
        build_world(catalog, cfg)
    cfg = catalog_config(cfg, catalog)
    cfg.write_yaml(out / "config.yaml")
    reports = {}
    for number, (name, stage) in enumerate(PIPELINE.items(), start=1):
        with step(f"[{number}/{len(PIPELINE)}] {name}"):
            reports[name] = stage.run(spark, cfg)
    print_summary(spark, cfg, out)
    return reports


def print_summary(spark, cfg: Config, out: Path) -> None:
    report = Path(cfg.output.report_dir)
    table1 = json.loads((report / "table1.json").read_text(encoding="utf-8"))
    print("\nTable 1 (test set, macro average over languages):")
    print(f"  {'features':<20}{'P':>7}{'R':>7}{'F1':>7}{'mAP':>7}")
    for subset, per_language in table1.items():
        avg = per_language["avg"]
        print(f"  {subset:<20}" + "".join(f"{avg.get(k, float('nan')):>7.3f}"
                                          for k in ("precision", "recall", "f1", "ap")))
    view = create_current_tags_view(spark, cfg)
    print(f"\nTracks per language tag (SQL over the Delta table; view `{view}` holds the usable tags):")
    run_query(spark, cfg, "tags_per_language").show(40, truncate=False)
    print(f"Delta tables: {cfg.tables.location}\nReport:       {report} (report.md, table1.json, plots)\n"
          f"Catalog:      {out / 'catalog'}\n"
          f"Settings:     {out / 'config.yaml'} (rerun a stage on this output: "
          f"lid-spark evaluate --config {out / 'config.yaml'} evaluation.table2=true)")
