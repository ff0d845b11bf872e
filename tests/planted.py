"""A small planted listening world for the consumption tests: structure the methods must find."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

PLAYS_SCHEMA = "user_id string, track_id string, ts timestamp, session_id string"
TRACKS_SCHEMA = "track_id string, artist_id string, audio_uri string, duration_s double"
T0 = datetime(2026, 3, 1, 12, 0, 0)


def planted_catalog(spark, tmp_path, users: int = 40, sessions_per_user: int = 4, seed: int = 5):
    """Two taste communities of 12 tracks (3 groups of 4 that are played together), a popular
    cross-community hub, and three bad rows (null user, unknown track, a play in 2100).

    A session: 3 tracks of one group of the user's community, 2 other tracks of the community,
    and the hub with probability 0.6; plays 3 minutes apart, no session ids (gap sessionization).
    Returns ``(plays_path, tracks_path, n_plays)`` of two Parquet tables under ``tmp_path``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        community = user % 2
        for session in range(sessions_per_user):
            group = rng.integers(3)
            in_group = rng.choice(4, 3, replace=False) + 4 * group
            others = rng.choice([i for i in range(12) if i // 4 != group], 2, replace=False)
            tracks = [f"c{community}_{i:02d}" for i in [*in_group, *others]]
            if rng.random() < 0.6:
                tracks.append("hub")
            start = T0 + timedelta(minutes=user * 1000 + session * 120)
            rows += [(f"u{user}", t, start + timedelta(minutes=3 * i), None) for i, t in enumerate(tracks)]
    rows += [(None, "hub", T0, None), ("u0", "ghost", T0, None), ("u0", "hub", datetime(2100, 1, 1), None)]
    catalog = [(f"c{c}_{i:02d}", f"a{c}", f"file:/x/{c}_{i}.wav", 180.0) for c in range(2) for i in range(12)]
    catalog += [("hub", "a-hub", "file:/x/hub.wav", 200.0)]
    plays_path, tracks_path = str(tmp_path / "plays"), str(tmp_path / "tracks")
    spark.createDataFrame(rows, PLAYS_SCHEMA).write.parquet(plays_path)
    spark.createDataFrame(catalog, TRACKS_SCHEMA).write.parquet(tracks_path)
    return plays_path, tracks_path, len(rows)
