"""Listening sessions: users with language and genre tastes, Zipf popularity, hubs, bots and noise.

Vectorised numpy in chunks of users, so 10^8 plays stream out in bounded memory. How a play
is drawn:

- each user has a main *market* (a sung language; demand follows the catalog's supply), some
  (``second_language_user_share``) a second one, and two favourite genres;
- a session picks one of the user's markets (and, with ``session_language_switch``, drifts to
  the other one mid-session), then each play is, in order of precedence:
  a uniformly random track (``noise_play_share``), a cross-language hit (``hub_play_share``),
  a track of a favourite genre in the session's market (``genre_taste``), or any track of the
  market; within a pool, tracks are drawn by Zipf popularity;
- bots (``bot_share`` of users) play one absurdly long session of random tracks;
- users of some platforms (``session_id_share``) send session ids; the others only timestamps.

Example
-------
>>> import pandas as pd
>>> from lid_spark.tools.synth.params import SynthParams
>>> tracks = pd.DataFrame({"market": ["en", "en", "fr", "fr"], "genre": ["pop", "rock", "pop", "pop"]})
>>> model = ListeningModel.fit(tracks, SynthParams.from_any({"tracks": 4, "users": 10}))
>>> chunk = next(model.plays(n_users=10, users_per_chunk=10))
>>> chunk.to_arrow().column_names
['user_id', 'track_id', 'ts', 'session_id']
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lid_spark.errors import ParameterError
from lid_spark.tools.synth.catalog import PLAYS_STREAM, USERS_STREAM, rng_for
from lid_spark.tools.synth.params import SynthParams

_EPOCH_SECONDS = 1_767_225_600   # 2026-01-01T00:00:00Z: the synthetic log starts here


@dataclass
class _Pool:
    tracks: np.ndarray    # track indices
    cdf: np.ndarray       # cumulative popularity, last element 1


def _pool(indices: np.ndarray, weights: np.ndarray) -> _Pool:
    cdf = np.cumsum(weights[indices])
    return _Pool(indices, cdf / cdf[-1])


@dataclass
class PlayChunk:
    """Plays as integer arrays; :meth:`to_arrow` formats ids and timestamps for the plays table."""

    user: np.ndarray          # user number
    track: np.ndarray         # track index
    seconds: np.ndarray       # seconds since the epoch of the synthetic log
    session: np.ndarray       # session number (unique per user within the chunk), -1: no session id

    def __len__(self) -> int:
        return self.track.size

    def to_arrow(self) -> pa.Table:
        """The plays contract: user_id, track_id, ts (timestamp, UTC), session_id (nullable)."""
        user = pc.cast(pa.array(self.user), pa.string())
        no_session = self.session < 0
        session = pc.cast(pa.array(self.session, mask=no_session), pa.string())
        track = pc.utf8_lpad(pc.cast(pa.array(self.track), pa.string()), width=7, padding="0")
        ts = pa.array(_EPOCH_SECONDS + self.seconds, type=pa.int64()).cast(pa.timestamp("s", tz="UTC"))
        return pa.table({
            "user_id": pc.binary_join_element_wise("u", user, ""),
            "track_id": pc.binary_join_element_wise("t", track, ""),
            "ts": ts.cast(pa.timestamp("us", tz="UTC")),
            "session_id": pc.binary_join_element_wise("s", user, "-", session, ""),
        })


@dataclass
class ListeningModel:
    """Catalog-side state for drawing plays: pools of tracks per market and (market, genre)."""

    params: SynthParams
    n_tracks: int
    markets: np.ndarray          # distinct market names
    market_share: np.ndarray     # share of tracks per market (demand follows supply)
    genres: np.ndarray
    market_pools: list[_Pool]
    genre_pools: dict[tuple[int, int], _Pool]
    hub_pool: _Pool
    is_hub: np.ndarray

    @classmethod
    def fit(cls, tracks: pd.DataFrame, params: SynthParams) -> ListeningModel:
        """``tracks`` has one row per track index with columns ``market`` and ``genre``."""
        n = len(tracks)
        rng = rng_for(params.seed, USERS_STREAM, 0)
        # Zipf popularity over a random ranking of the tracks.
        rank = rng.permutation(n) + 1
        popularity = rank.astype(float) ** -params.zipf_exponent
        market_codes, market = np.unique(tracks["market"].to_numpy().astype(str), return_inverse=True)
        genre_codes, genre = np.unique(tracks["genre"].to_numpy().astype(str), return_inverse=True)
        n_hubs = max(1, int(round(params.hub_share * n)))
        hubs = np.argsort(rank)[:n_hubs]               # the most popular tracks become cross-language hits
        is_hub = np.zeros(n, dtype=bool)
        is_hub[hubs] = True
        market_pools = [_pool(np.flatnonzero(market == m), popularity) for m in range(len(market_codes))]
        order = np.lexsort((np.arange(n), genre, market))
        keys = market[order] * len(genre_codes) + genre[order]
        bounds = np.flatnonzero(np.diff(keys)) + 1
        genre_pools = {}
        for chunk in np.split(order, bounds):
            genre_pools[(int(market[chunk[0]]), int(genre[chunk[0]]))] = _pool(chunk, popularity)
        share = np.bincount(market, minlength=len(market_codes)) / n
        return cls(params, n, market_codes, share, genre_codes, market_pools, genre_pools,
                   _pool(hubs, popularity), is_hub)

    def plays(self, n_users: int, users_per_chunk: int = 100_000, target_plays: int | None = None
              ) -> Iterator[PlayChunk]:
        """Yield chunks of plays for users ``0..n_users-1``.

        ``target_plays`` scales sessions per user so the total comes out near that number.
        Each chunk is drawn from its own random stream, so chunks are reproducible and independent.
        """
        p = self.params
        sessions_per_user = p.sessions_per_user
        if target_plays:
            bots = p.bot_share * p.bot_session_plays
            fewest = n_users * (bots + (1 - p.bot_share) * p.plays_per_session)   # one session per user
            if target_plays < fewest:
                raise ParameterError(
                    f"synth.plays={target_plays} is too few for synth.users={n_users}: every user plays at least one "
                    f"session (bots {p.bot_session_plays} plays), about {int(fewest)} plays; lower synth.users")
            per_user = target_plays / n_users
            sessions_per_user = max(1.0, (per_user - bots) / ((1 - p.bot_share) * p.plays_per_session))
        for chunk_index, first in enumerate(range(0, n_users, users_per_chunk)):
            users = np.arange(first, min(n_users, first + users_per_chunk))
            yield self._chunk(users, sessions_per_user, rng_for(p.seed, PLAYS_STREAM, chunk_index))

    def _chunk(self, users: np.ndarray, sessions_per_user: float, rng: np.random.Generator) -> PlayChunk:
        p = self.params
        n_markets, n_genres = len(self.markets), len(self.genres)
        u = len(users)
        main = rng.choice(n_markets, size=u, p=self.market_share)
        second = rng.choice(n_markets, size=u, p=self.market_share)
        has_second = (rng.random(u) < p.second_language_user_share) & (second != main)
        fav = rng.integers(0, n_genres, size=(u, 2))
        is_bot = rng.random(u) < p.bot_share
        has_session_id = rng.random(u) < p.session_id_share
        # Sessions: a Poisson number per user (at least one); bots have exactly one.
        n_sessions = np.where(is_bot, 1, np.maximum(1, rng.poisson(sessions_per_user, size=u)))
        s_user = np.repeat(np.arange(u), n_sessions)
        s_len = np.where(is_bot[s_user], p.bot_session_plays,
                         rng.geometric(1.0 / p.plays_per_session, size=s_user.size))
        # bilingual listeners spend about a third of their sessions in their second language
        s_market = np.where(has_second[s_user] & (rng.random(s_user.size) < 0.35), second[s_user], main[s_user])
        s_start = rng.uniform(0, p.days * 86400.0, size=s_user.size)
        # Plays.
        play_session = np.repeat(np.arange(s_user.size), s_len)
        user = s_user[play_session]
        n_plays = play_session.size
        market = s_market[play_session]
        switch = has_second[user] & (rng.random(n_plays) < p.session_language_switch)
        market = np.where(switch, np.where(market == main[user], second[user], main[user]), market)
        r = rng.random(n_plays)
        noise = is_bot[user] | (r < p.noise_play_share)
        hub = ~noise & (r < p.noise_play_share + p.hub_play_share)
        taste = ~noise & ~hub & (rng.random(n_plays) < p.genre_taste)
        genre = fav[user, rng.integers(0, 2, size=n_plays)]
        track = np.empty(n_plays, dtype=np.int64)
        track[noise] = rng.integers(0, self.n_tracks, size=int(noise.sum()))
        track[hub] = self._draw(self.hub_pool, rng.random(int(hub.sum())))
        # Genre-taste plays fall back to the whole market where it has no track of that genre.
        pool_key = np.where(taste, market * n_genres + genre, -1 - market)
        rest = ~noise & ~hub
        keys = pool_key[rest]
        rest_index = np.flatnonzero(rest)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
        for group in np.split(order, bounds):
            if group.size == 0:
                continue
            key = int(keys[group[0]])
            if key < 0:
                pool = self.market_pools[-1 - key]
            else:
                pool = self.genre_pools.get((key // n_genres, key % n_genres)) or self.market_pools[key // n_genres]
            track[rest_index[group]] = self._draw(pool, rng.random(group.size))
        # Time: plays follow each other by a listened length (skips are short).
        gap = np.where(rng.random(n_plays) < 0.2, rng.uniform(5, 40, n_plays), rng.uniform(120, 300, n_plays))
        elapsed = np.cumsum(gap)
        first_play = np.cumsum(s_len) - s_len
        offset = elapsed - elapsed[first_play][play_session]
        seconds = (s_start[play_session] + offset).astype(np.int64)
        session = np.where(has_session_id[user], play_session, -1)
        return PlayChunk(users[user], track, seconds, session)

    @staticmethod
    def _draw(pool: _Pool, uniforms: np.ndarray) -> np.ndarray:
        return pool.tracks[np.minimum(np.searchsorted(pool.cdf, uniforms), pool.tracks.size - 1)]
