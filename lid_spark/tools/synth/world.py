"""Build a whole synthetic world on disk: the input contract (tracks, plays, labels, audio) plus truth.

Layout of ``out_dir`` (Parquet directories, FLAC files)::

    tracks/   track_id, artist_id, audio_uri (absolute path), duration_s, title, genre, market (ISO 3166 country),
              provenance ("lid-spark synthetic world": the pipeline knows its own world by it)
    plays/    user_id, track_id, ts (timestamp), session_id (nullable)
    labels/   track_id, language (dominant language class; instrumental tracks have no row)
    truth/    track_id, language (class, or zxx), sung_language, second_language, is_instrumental,
              genre, artist_id, vocal_level_db, is_hub, tempo, vocal_seconds, lyrics, voice
    audio/<track_id>.flac                  mono, ``sample_rate``
    stems/<track_id>.vocals.flac, .accompaniment.flac   (``write_stems``)
    report/   gallery.png, synth_report.md, synth_report.json

Example
-------
>>> world = build_world(out_dir, {"tracks": 33, "seconds": 6.0, "users": 60, "workers": 1})  # doctest: +SKIP
>>> world.n_tracks  # doctest: +SKIP
33
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lid_spark import INSTRUMENTAL
from lid_spark.contract import SYNTHETIC_PROVENANCE
from lid_spark.processes import map_in_processes
from lid_spark.progress import get_logger, step
from lid_spark.tools.synth.catalog import catalog_plan, label_classes, track_markets
from lid_spark.tools.synth.params import SynthParams
from lid_spark.tools.synth.sessions import ListeningModel

log = get_logger(__name__)
_TABLES = ("tracks", "plays", "labels", "truth")


@dataclass(frozen=True)
class World:
    """Where a synthetic world lives and how big it is."""

    out_dir: Path
    params: SynthParams
    n_tracks: int
    n_labelled: int
    n_instrumental: int
    n_plays: int
    audio_seconds: float
    wall_seconds: float

    @property
    def tracks_path(self) -> Path:
        return self.out_dir / "tracks"

    @property
    def plays_path(self) -> Path:
        return self.out_dir / "plays"

    @property
    def labels_path(self) -> Path:
        return self.out_dir / "labels"

    @property
    def truth_path(self) -> Path:
        return self.out_dir / "truth"

    @property
    def audio_dir(self) -> Path:
        return self.out_dir / "audio"

    @property
    def stems_dir(self) -> Path:
        return self.out_dir / "stems"

    @property
    def report_dir(self) -> Path:
        return self.out_dir / "report"

    def config_overrides(self) -> list[str]:
        """``inputs.*`` overrides that point the pipeline at this world."""
        return [f"inputs.tracks={self.tracks_path}", f"inputs.plays={self.plays_path}",
                f"inputs.labels={self.labels_path}"]


def _render_and_write(row: dict, params: SynthParams, audio_dir: str, stems_dir: str | None) -> dict:
    """Worker: render one track, write its FLAC file(s), return its truth row and audio features."""
    import soundfile as sf

    from lid_spark.tools.synth.dsp import mfcc_stats
    from lid_spark.tools.synth.render import render_track

    song = render_track(row, params)
    path = Path(audio_dir) / f"{row['track_id']}.flac"
    sf.write(path, song.mix, params.sample_rate, format="FLAC", subtype="PCM_16")
    if stems_dir:
        sf.write(Path(stems_dir) / f"{row['track_id']}.vocals.flac", song.vocals, params.sample_rate, subtype="PCM_16")
        sf.write(Path(stems_dir) / f"{row['track_id']}.accompaniment.flac", song.accompaniment, params.sample_rate,
                 subtype="PCM_16")
    return {
        "track_id": row["track_id"],
        "audio_uri": str(path.resolve()),
        "lyrics": song.lyrics,
        "vocal_level_db": song.vocal_level_db,
        "tempo": song.tempo,
        "vocal_seconds": song.vocal_seconds,
        "features": mfcc_stats(song.mix, params.sample_rate),
    }


def _render_all(plan: pd.DataFrame, p: SynthParams, audio_dir: Path, stems_dir: Path | None) -> list[dict]:
    rows = plan.to_dict("records")
    args = (p, str(audio_dir), str(stems_dir) if stems_dir else None)
    workers = p.workers if len(rows) >= 8 else 1   # a few tracks render faster than processes start
    return list(map_in_processes(_render_and_write, [(r, *args) for r in rows], workers))


def _reset(out_dir: Path, names) -> None:
    for name in names:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        target.mkdir(parents=True)


def _write_parquet(table: pa.Table | pd.DataFrame, directory: Path, part: int = 0) -> None:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(table, directory / f"part-{part:05d}.parquet")


def _markets(plan: pd.DataFrame) -> pd.DataFrame:
    """What each track's audience is: its sung language (instrumentals: the artist's language)."""
    market = np.where(plan["is_instrumental"], plan["artist_language"], plan["language"])
    return pd.DataFrame({"market": market, "genre": plan["genre"].to_numpy()})


def _truth(plan: pd.DataFrame, listening: ListeningModel, p: SynthParams) -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": plan["track_id"],
        "language": np.where(plan["is_instrumental"], INSTRUMENTAL, plan["label_class"]),
        "sung_language": np.where(plan["is_instrumental"], None, plan["language"]),
        "second_language": [None if x is None else label_classes([x], p)[0] for x in plan["second_language"]],
        "is_instrumental": plan["is_instrumental"].astype(bool),
        "genre": plan["genre"],
        "artist_id": plan["artist_id"],
        "is_hub": listening.is_hub,
        "voice": plan["variant"] + "/" + plan["base_pitch"].astype(str) + "/" + plan["rate"].astype(str),
    })


def _labels(plan: pd.DataFrame) -> pd.DataFrame:
    sung = ~plan["is_instrumental"].to_numpy()
    return pd.DataFrame({"track_id": plan["track_id"][sung], "language": plan["label_class"][sung]})


def build_world(out_dir: str | Path, cfg_or_params: Any = None, **overrides) -> World:
    """Generate a synthetic world (audio, tracks, plays, labels, truth, report) under ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Created if missing; its tracks/plays/labels/truth/audio/stems/report folders are replaced.
    cfg_or_params : Config, mapping or SynthParams, optional
        A full configuration (its ``synth`` section is used), a mapping of ``synth`` keys, or
        SynthParams; missing keys take their defaults from conf/default.yaml's ``synth`` section.
    **overrides
        Further ``synth`` keys, e.g. ``tracks=33``.

    Returns
    -------
    World

    Example
    -------
    >>> world = build_world(tmp_path, {"tracks": 33, "seconds": 6.0, "users": 60, "workers": 1})  # doctest: +SKIP
    """
    p = SynthParams.from_any(cfg_or_params, **overrides)
    out = Path(out_dir).resolve()
    start = time.perf_counter()
    _reset(out, _TABLES + ("audio", "report") + (("stems",) if p.write_stems else ()))
    with step(f"plan {p.tracks} tracks", log):
        plan = catalog_plan(p)
    with step(f"render {p.tracks} x {p.seconds:.0f} s of audio with {p.workers} worker(s)", log):
        render_start = time.perf_counter()
        rendered = pd.DataFrame(_render_all(plan, p, out / "audio", out / "stems" if p.write_stems else None))
        render_seconds = time.perf_counter() - render_start
    with step("listening sessions", log):
        listening = ListeningModel.fit(_markets(plan), p)
        plays_table = pa.concat_tables([c.to_arrow() for c in listening.plays(p.users, target_plays=p.plays or None)])
        _write_parquet(plays_table, out / "plays")
    tracks = pd.DataFrame({
        "track_id": plan["track_id"], "artist_id": plan["artist_id"], "audio_uri": rendered["audio_uri"],
        "duration_s": np.full(len(plan), float(p.seconds)),
        "title": [" ".join(lyr.split()[:2]) if lyr else f"Instrumental {i}"
                  for i, lyr in enumerate(rendered["lyrics"])],
        "genre": plan["genre"], "market": track_markets(plan),
        "provenance": SYNTHETIC_PROVENANCE,
    })
    truth = _truth(plan, listening, p).assign(vocal_level_db=rendered["vocal_level_db"], tempo=rendered["tempo"],
                                           vocal_seconds=rendered["vocal_seconds"], lyrics=rendered["lyrics"])
    labels = _labels(plan)
    for name, frame in (("tracks", tracks), ("labels", labels), ("truth", truth)):
        _write_parquet(frame, out / name)
    audio_seconds = float(p.tracks * p.seconds)
    world = World(out, p, len(plan), len(labels), int(plan["is_instrumental"].sum()), plays_table.num_rows,
                  audio_seconds, time.perf_counter() - start)
    if p.report:
        with step("report and quick baselines", log):
            _report(world, plan, rendered, plays_table.to_pandas(), render_seconds)
    log.info("synthetic world: %d tracks (%d labelled, %d instrumental), %d plays, "
             "%.0f audio s at %.1f audio s/s -> %s",
             world.n_tracks, world.n_labelled, world.n_instrumental, world.n_plays, audio_seconds,
             audio_seconds / render_seconds, out)
    return world


def _report(world: World, plan: pd.DataFrame, rendered: pd.DataFrame, plays: pd.DataFrame,
            render_seconds: float) -> None:
    from lid_spark.tools.synth.report import audio_baseline, chance_level, co_listening_baseline, gallery, write_report

    p = world.params
    sung = ~plan["is_instrumental"].to_numpy()
    y = plan["label_class"].to_numpy()[sung]
    groups = plan["artist_id"].to_numpy()[sung]
    summary: dict[str, Any] = {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.__dict__.items()},
        "sizes": {"tracks": world.n_tracks, "labelled": world.n_labelled, "instrumental": world.n_instrumental,
                  "bilingual_songs": int(plan["second_language"].notna().sum()),
                  "artists": int(plan["artist_id"].nunique()), "users": p.users, "plays": world.n_plays,
                  "plays_with_session_id": int(plays["session_id"].notna().sum()),
                  "sung_languages": int(plan.loc[sung, "language"].nunique())},
        "label_balance": plan.loc[sung, "label_class"].value_counts().sort_index().to_dict(),
        "speed": {"audio_seconds": world.audio_seconds, "wall_seconds": render_seconds, "workers": p.workers,
                  "audio_seconds_per_second": world.audio_seconds / render_seconds},
    }
    if len(np.unique(groups)) >= 2 and len(np.unique(y)) >= 2:
        features = np.stack(rendered["features"].to_numpy())[sung]
        summary["baselines"] = {
            "chance (class priors)": chance_level(y),
            "audio: logistic regression on MFCC mean+std of the mix": audio_baseline(features, y, groups),
            "consumption: co-listening vote over same-session counts": co_listening_baseline(
                plays, plan["track_id"].to_numpy()[sung], y, groups),
        }
    first_song = {}
    for row, uri in zip(plan.itertuples(), rendered["audio_uri"]):
        if not row.is_instrumental and row.second_language is None:
            first_song.setdefault(row.label_class, uri)
    gallery(first_song, world.report_dir / "gallery.png", p.classes)
    write_report(summary, world.report_dir)


# A world small enough for unit tests: 33 tracks (3 per class, one artist each: any artist split works), 6 s each.
TINY_WORLD = {"tracks": 33, "seconds": 6.0, "users": 60, "sessions_per_user": 4.0, "workers": 1,
              "intro_seconds": [0.5, 1.0], "outro_seconds": 0.5, "tracks_per_artist": 1.0}


def tiny_world(out_dir: str | Path, **overrides) -> World:
    """A ~30-track, 6 s world (3 tracks per class) for tests and examples; ``overrides`` as in build_world.

    Example
    -------
    >>> world = tiny_world(tmp_path, seed=3)  # doctest: +SKIP
    >>> world.n_tracks  # doctest: +SKIP
    33
    """
    return build_world(out_dir, {**TINY_WORLD, **overrides})


def write_sessions_only(out_dir: str | Path, cfg_or_params: Any = None, **overrides) -> World:
    """Write tracks, labels, truth and ``plays`` -- no audio -- in bounded memory, for benchmarks.

    Plays are drawn in chunks of users sized so each chunk holds about ``chunk_plays`` plays,
    and each chunk is written to its own Parquet file; memory stays proportional to
    ``chunk_plays`` plus the track catalog, whatever ``plays`` is. ``plays`` = 0 means
    ``users x sessions_per_user x plays_per_session``.

    Example
    -------
    >>> write_sessions_only(tmp, {"tracks": 1000, "users": 500, "plays": 100000})  # doctest: +SKIP
    """
    p = SynthParams.from_any(cfg_or_params, **overrides)
    out = Path(out_dir).resolve()
    start = time.perf_counter()
    _reset(out, _TABLES)
    with step(f"plan {p.tracks} tracks", log):
        plan = catalog_plan(p)
        listening = ListeningModel.fit(_markets(plan), p)
        tracks = pd.DataFrame({"track_id": plan["track_id"], "artist_id": plan["artist_id"],
                               "audio_uri": pa.nulls(len(plan), pa.string()).to_pandas(),
                               "duration_s": np.full(len(plan), float(p.seconds)), "genre": plan["genre"],
                               "market": track_markets(plan), "provenance": SYNTHETIC_PROVENANCE})
        _write_parquet(tracks, out / "tracks")
        labels = _labels(plan)
        _write_parquet(labels, out / "labels")
        _write_parquet(_truth(plan, listening, p), out / "truth")
        n_labelled, n_instrumental = len(labels), int(plan["is_instrumental"].sum())
        del tracks, labels, plan
    target = p.plays or None
    per_user = (target / p.users) if target else p.sessions_per_user * p.plays_per_session
    users_per_chunk = max(1, int(p.chunk_plays / max(per_user, 1.0)))
    n_plays = 0
    with step(f"write plays for {p.users} users in chunks of {users_per_chunk} users", log):
        for part, chunk in enumerate(listening.plays(p.users, users_per_chunk=users_per_chunk, target_plays=target)):
            _write_parquet(chunk.to_arrow(), out / "plays", part)
            n_plays += len(chunk)
            del chunk
    world = World(out, p, p.tracks, n_labelled, n_instrumental, n_plays, 0.0, time.perf_counter() - start)
    log.info("sessions-only world: %d tracks, %d plays in %.1f s -> %s", p.tracks, n_plays, world.wall_seconds, out)
    return world
