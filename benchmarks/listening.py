"""A fast, vectorised generator of listening sessions for the consumption benchmarks.

Tracks belong to ``communities`` taste communities (think: languages); within each community
popularity is Zipf(``zipf``) over ranks; a pool of popular cross-community hits (hubs) takes a
share of plays everywhere. Users have a home community and sometimes listen elsewhere. Sessions
have geometric lengths; half carry a session_id, half must be sessionized by inactivity gap.
A few bot sessions (thousands of plays), unknown track ids and exact duplicate plays are mixed in.

It writes Parquet in the plays/tracks data contract; ``community`` is kept in the tracks table so
benchmarks can check that embeddings find the communities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

T0_US = 1_767_225_600_000_000  # 2026-01-01 00:00:00 UTC in microseconds


def generate(out_dir: str | Path, n_plays: int, *, n_tracks: int | None = None, communities: int = 8,
             session_mean: float = 10.0, hub_share: float = 0.08, home_share: float = 0.85, zipf: float = 1.0,
             seed: int = 0) -> dict:
    """Write ``out_dir/plays`` and ``out_dir/tracks`` (Parquet); return their paths and sizes."""
    rng = np.random.default_rng(seed)
    n_tracks = n_tracks or max(1000, n_plays // 100)
    per_comm = n_tracks // communities
    n_tracks = per_comm * communities
    # track id = rank * communities + community: rank 0 is each community's most popular track
    rank_p = 1.0 / np.arange(1, per_comm + 1) ** zipf
    rank_cdf = np.cumsum(rank_p / rank_p.sum())
    n_hubs = max(communities, n_tracks // 200)
    hub_tracks = np.arange(n_hubs)  # the top ranks of every community are the cross-community hits

    lengths = 1 + rng.geometric(1.0 / session_mean, size=int(n_plays / session_mean * 1.2))
    lengths = lengths[np.cumsum(lengths) <= n_plays]
    n_sessions = len(lengths)
    n_users = max(2, n_sessions // 6)
    session_user = rng.integers(0, n_users, n_sessions)
    home = session_user % communities
    away = rng.random(n_sessions) > home_share
    session_comm = np.where(away, rng.integers(0, communities, n_sessions), home)
    play_session = np.repeat(np.arange(n_sessions), lengths)
    n = len(play_session)
    ranks = np.minimum(np.searchsorted(rank_cdf, rng.random(n)), per_comm - 1)
    tracks = ranks * communities + session_comm[play_session]
    is_hub = rng.random(n) < hub_share
    tracks[is_hub] = hub_tracks[rng.integers(0, len(hub_tracks), is_hub.sum())]
    # timestamps: sessions start anywhere in 60 days, plays 3.5 minutes apart
    start = T0_US + rng.integers(0, 60 * 86400, n_sessions) * 1_000_000
    offset = np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    ts = start[play_session] + offset * 210_000_000
    has_id = rng.random(n_sessions) < 0.5
    users = session_user[play_session]

    # bad rows: bots (one session, thousands of plays), unknown tracks, duplicates
    n_bot = max(1, n // 1_000_000) * 3000
    bot_tracks = rng.integers(0, n_tracks, n_bot)
    bot_ts = T0_US + np.arange(n_bot) * 1_000_000
    n_bad = max(1, n // 1000)
    unknown = rng.integers(0, n, n_bad)
    tracks_out = tracks.copy()
    tracks_out[unknown] = n_tracks + 7  # not in the catalog
    dup = rng.integers(0, n, n_bad)

    user_col = np.concatenate([users, np.full(n_bot, -1), users[dup]])
    track_col = np.concatenate([tracks_out, bot_tracks, tracks_out[dup]])
    ts_col = np.concatenate([ts, bot_ts, ts[dup]])
    sid = np.where(has_id[play_session], play_session, -1)
    sid_col = np.concatenate([sid, np.full(n_bot, 10**12), sid[dup]])
    sid_arr = pa.array(sid_col).cast(pa.string())
    sid_arr = pc.if_else(pa.array(sid_col >= 0), sid_arr, pa.nulls(len(sid_col), pa.string()))
    table = pa.table({
        "user_id": pc.binary_join_element_wise("u", pa.array(user_col).cast(pa.string()), ""),
        "track_id": pc.binary_join_element_wise("t", pa.array(track_col).cast(pa.string()), ""),
        "ts": pa.array(ts_col, pa.timestamp("us", tz="UTC")),
        "session_id": sid_arr,
    })
    out = Path(out_dir)
    (out / "plays").mkdir(parents=True, exist_ok=True)
    (out / "tracks").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "plays" / "part-0.parquet", row_group_size=1_000_000)
    catalog = pa.table({
        "track_id": pc.binary_join_element_wise("t", pa.array(np.arange(n_tracks)).cast(pa.string()), ""),
        "artist_id": pa.array([f"a{i // 10}" for i in range(n_tracks)]),
        "audio_uri": pa.array([f"file:/catalog/{i}.flac" for i in range(n_tracks)]),
        "duration_s": pa.array(np.full(n_tracks, 200.0)),
        "community": pa.array(np.arange(n_tracks) % communities),
    })
    pq.write_table(catalog, out / "tracks" / "part-0.parquet")
    return {"plays": str(out / "plays"), "tracks": str(out / "tracks"), "n_plays": table.num_rows,
            "n_tracks": n_tracks, "n_sessions": n_sessions, "n_users": n_users}
