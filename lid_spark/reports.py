"""The one report writer of every stage: ``<name>.json`` (machine-readable) and ``<name>.md`` (for people).

Example
-------
>>> import tempfile
>>> json_path, md_path = write_report(tempfile.mkdtemp(), "demo", "Demo report", {"counts": {"tracks": 3}})
>>> print(md_path.read_text().splitlines()[0])
# Demo report
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lid_spark.files import replace_file


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None  # JSON has no NaN
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _markdown_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def to_markdown(title: str, report: dict[str, Any]) -> str:
    """Sections of flat dicts become two-column tables; dicts of dicts become one table with columns."""
    lines = [f"# {title}", ""]
    for section, content in report.items():
        lines += [f"## {section}", ""]
        if isinstance(content, dict) and content and all(isinstance(v, dict) for v in content.values()):
            columns = list(dict.fromkeys(k for row in content.values() for k in row))
            lines.append("| | " + " | ".join(columns) + " |")
            lines.append("|---" * (len(columns) + 1) + "|")
            for name, row in content.items():
                lines.append(f"| {name} | " + " | ".join(_markdown_value(row.get(c)) for c in columns) + " |")
        elif isinstance(content, dict):
            lines += ["| | |", "|---|---|"]
            lines += [f"| {k} | {_markdown_value(v)} |" for k, v in content.items()]
        else:
            lines.append(_markdown_value(content))
        lines.append("")
    return "\n".join(lines)


def write_report(report_dir: str | Path, name: str, title: str, report: dict[str, Any],
                 markdown: str | None = None) -> tuple[Path, Path]:
    """Write ``<report_dir>/<name>.json`` and ``<name>.md``; return both paths.

    Each file is written under a temporary name and renamed into place: a reader (or a killed job)
    never leaves a half-written report.

    ``markdown`` replaces the generic tables (:func:`to_markdown`) where a stage has its own layout.
    """
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    cleaned = write_json(json_path, report)
    replace_file(md_path, (markdown if markdown is not None else to_markdown(title, cleaned)) + "\n")
    return json_path, md_path


def write_json(path: str | Path, data: Any) -> Any:
    """Write ``data`` as JSON (NaN and infinities as null, numpy scalars as numbers); returns what was written."""
    cleaned = _clean(data)
    replace_file(path, json.dumps(cleaned, indent=2, default=str) + "\n")
    return cleaned
