"""The synthetic world: a multilingual sung catalog with listening sessions (DESIGN section 7).

``build_world(out_dir, params)`` writes the input contract (tracks, plays, labels, FLAC audio)
plus ground truth and a report; ``write_sessions_only`` writes plays at benchmark scale.
Heavy modules load lazily, so ``lid_spark.tools.synth.espeak`` and ``lexicon`` stay cheap to import.
"""

from __future__ import annotations


def __getattr__(name):
    if name in ("build_world", "write_sessions_only", "tiny_world", "World"):
        from lid_spark.tools.synth import world

        return getattr(world, name)
    if name == "SynthParams":
        from lid_spark.tools.synth.params import SynthParams

        return SynthParams
    raise AttributeError(name)


__all__ = ["build_world", "write_sessions_only", "tiny_world", "World", "SynthParams"]
