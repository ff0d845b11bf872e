"""Spleeter separation server: runs INSIDE the Spleeter environment, driven by ``spleeter_backend``.

This file is a script for the Spleeter environment (Python 3.11, TensorFlow 2.12, numpy < 2): it imports
only the standard library, numpy and spleeter, never the lid_spark package (whose environment it does
not share). One process loads the model once and then separates any number of tracks.

Protocol (stdin -> requests, stdout -> replies), every message one frame::

    <u32 little-endian header length> <header: UTF-8 JSON> <payload: header["n_bytes"] bytes>

- On start the server sends ``{"ready": true, "sample_rate": SR, "instruments": [...]}`` once the model is
  loaded, or ``{"ready": false, "error": "..."}`` and exits with status 3.
- Request ``{"op": "separate", "n_samples": N, "n_bytes": 4N}`` with N mono float32 samples at SR
  (little-endian) -> reply ``{"ok": true, "n_samples": N, "n_bytes": 4N}`` with the vocal stem, mono
  float32; or ``{"ok": false, "error": "..."}`` (no payload) when that one track fails.
- Request ``{"op": "quit"}`` (or end of stdin) ends the process with status 0.

Anything the libraries print goes to stderr: stdout carries frames only.

The module also holds :class:`WaveAudioAdapter`, a Spleeter audio adapter that reads PCM WAV files with
the standard library, so that ``spleeter train --adapter spleeter_worker.WaveAudioAdapter`` trains on
WAV stems without the ffmpeg binary.

Usage (inside the Spleeter environment)::

    MODEL_PATH=/models python spleeter_worker.py --params spleeter:2stems
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import wave

import numpy as np

HEADER = struct.Struct("<I")
MAX_HEADER_BYTES = 1 << 20


def read_exact(stream, n: int) -> bytes:
    """Exactly ``n`` bytes from ``stream``; ``b""`` only at a clean end of stream before the first byte."""
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            if got == 0:
                return b""
            raise EOFError(f"stream ended after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(stream) -> tuple[dict, bytes] | None:
    """One ``(header, payload)`` frame, or None at end of stream."""
    prefix = read_exact(stream, HEADER.size)
    if not prefix:
        return None
    (length,) = HEADER.unpack(prefix)
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"frame header of {length} bytes: the stream is out of sync")
    header = json.loads(read_exact(stream, length).decode("utf-8"))
    n_bytes = int(header.get("n_bytes", 0))
    payload = read_exact(stream, n_bytes) if n_bytes else b""
    if len(payload) != n_bytes:
        raise EOFError(f"stream ended inside a {n_bytes}-byte payload")
    return header, payload


def write_frame(stream, header: dict, payload: bytes = b"") -> None:
    header = dict(header, n_bytes=len(payload))
    text = json.dumps(header).encode("utf-8")
    stream.write(HEADER.pack(len(text)) + text)
    if payload:
        stream.write(payload)
    stream.flush()


class WaveAudioAdapter:
    """Placeholder replaced by :func:`_define_adapter` once spleeter is importable (see module doc)."""


def _define_adapter():
    """Define the WAV adapter as a real ``spleeter.audio.adapter.AudioAdapter`` subclass."""
    from spleeter.audio.adapter import AudioAdapter

    class _WaveAudioAdapter(AudioAdapter):
        """Loads 16-bit PCM WAV files with the standard library (Spleeter training without ffmpeg).

        The file must already be at the model's sample rate (no resampling here); mono files are
        returned as 2 identical channels, as Spleeter's models take stereo.
        """

        def load(self, path, offset=None, duration=None, sample_rate=None, dtype=np.float32):
            path = path.decode() if isinstance(path, bytes) else str(path)
            if hasattr(offset, "numpy"):
                offset = offset.numpy()
            if hasattr(duration, "numpy"):
                duration = duration.numpy()
            if hasattr(sample_rate, "numpy"):
                sample_rate = sample_rate.numpy()
            with wave.open(path, "rb") as f:
                rate, channels, width = f.getframerate(), f.getnchannels(), f.getsampwidth()
                if width != 2:
                    raise ValueError(f"{path}: {8 * width}-bit WAV, this adapter reads 16-bit PCM only")
                if sample_rate is not None and int(sample_rate) != rate:
                    raise ValueError(f"{path} is at {rate} Hz, the model wants {int(sample_rate)} Hz")
                start = int(round(float(offset or 0.0) * rate))
                f.setpos(min(start, f.getnframes()))
                count = f.getnframes() - f.tell()
                if duration is not None and float(duration) > 0:
                    count = min(count, int(round(float(duration) * rate)))
                frames = f.readframes(count)
            samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
            samples = samples.reshape(-1, channels)
            if channels == 1:
                samples = np.repeat(samples, 2, axis=1)
            return samples.astype(dtype), rate

        def save(self, path, data, sample_rate, codec=None, bitrate=None):
            data = np.clip(np.asarray(data, dtype=np.float32), -1.0, 1.0)
            if data.ndim == 1:
                data = data[:, None]
            with wave.open(str(path), "wb") as f:
                f.setnchannels(data.shape[1])
                f.setsampwidth(2)
                f.setframerate(int(sample_rate))
                f.writeframes((data * 32767.0).astype("<i2").tobytes())

    _WaveAudioAdapter.__name__ = _WaveAudioAdapter.__qualname__ = "WaveAudioAdapter"
    return _WaveAudioAdapter


class PersistentPredictor:
    """Spleeter's own estimator (``create_estimator``), with ONE ``predict`` generator kept open.

    ``spleeter.separator.Separator.separate`` starts a new ``Estimator.predict`` for every call, which
    rebuilds the graph and restores the checkpoint each time. Here the input function is a generator
    that blocks on a queue of waveforms, so one ``predict`` stays open for the life of the process: the
    graph is built and the checkpoint restored once. Predictions come back in input order, so each
    ``separate`` puts one waveform and takes the next prediction (correct even if tf.data reads ahead).
    """

    def __init__(self, params_descriptor: str):
        import queue

        import tensorflow as tf
        from spleeter.separator import create_estimator
        from spleeter.utils.configuration import load_configuration

        tf.get_logger().setLevel("ERROR")  # keep the driver's stderr tail for real errors, not deprecations
        self.params = load_configuration(params_descriptor)
        self._tf = tf
        self._estimator = create_estimator(self.params, False)
        self._queue: queue.Queue = queue.Queue()
        self._predictions = None

    def _feed(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            yield item

    def _input_fn(self):
        tf = self._tf
        return tf.data.Dataset.from_generator(
            self._feed, output_signature={"waveform": tf.TensorSpec((None, 2), tf.float32),
                                          "audio_id": tf.TensorSpec((), tf.string)})

    def separate(self, stereo: np.ndarray) -> dict:
        """Stems of a (n, 2) float32 waveform at the model's sample rate: name -> (n', 2) array."""
        if self._predictions is None:
            self._predictions = self._estimator.predict(self._input_fn, yield_single_examples=False)
        self._queue.put({"waveform": np.ascontiguousarray(stereo, dtype=np.float32), "audio_id": b""})
        try:
            prediction = next(self._predictions)
        except BaseException:
            self.close()  # a failed session cannot continue: rebuild on the next track
            raise
        prediction.pop("audio_id", None)
        return prediction

    def close(self) -> None:
        """End the open prediction (the feed generator returns, TensorFlow's reader thread ends)."""
        if self._predictions is not None:
            self._queue.put(None)
            self._predictions.close()
            self._predictions = None
            self._queue = type(self._queue)()


def serve(params: str, stdin, stdout) -> int:
    """Load the Spleeter model named by ``params`` and answer separation requests until quit / EOF."""
    try:
        predictor = PersistentPredictor(params)
        sample_rate = int(predictor.params["sample_rate"])
        instruments = list(predictor.params["instrument_list"])
        if "vocals" not in instruments:
            raise ValueError(f"model {params} has no 'vocals' stem (stems: {instruments})")
        # Separating a short silence builds the graph and loads the checkpoint now, not on the first track.
        predictor.separate(np.zeros((sample_rate, 2), dtype=np.float32))
    except Exception as e:  # report any start-up failure to the driver, then stop
        write_frame(stdout, {"ready": False, "error": f"{type(e).__name__}: {e}"})
        return 3
    write_frame(stdout, {"ready": True, "sample_rate": sample_rate, "instruments": instruments})
    while True:
        frame = read_frame(stdin)
        if frame is None:
            predictor.close()
            return 0
        header, payload = frame
        if header.get("op") == "quit":
            predictor.close()
            return 0
        if header.get("op") != "separate":
            write_frame(stdout, {"ok": False, "error": f"unknown op {header.get('op')!r}"})
            continue
        try:
            mono = np.frombuffer(payload, dtype="<f4")
            if mono.size != int(header["n_samples"]):
                raise ValueError(f"expected {header['n_samples']} samples, got {mono.size}")
            stems = predictor.separate(np.repeat(mono[:, None], 2, axis=1))
            vocals = np.asarray(stems["vocals"], dtype=np.float32).mean(axis=1)[: mono.size]
            if vocals.size < mono.size:  # never return fewer samples than were sent
                vocals = np.pad(vocals, (0, mono.size - vocals.size))
        except Exception as e:  # one bad track must not end the server
            write_frame(stdout, {"ok": False, "error": f"{type(e).__name__}: {e}"})
            continue
        write_frame(stdout, {"ok": True, "n_samples": int(vocals.size)}, vocals.astype("<f4").tobytes())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="spleeter:2stems",
                        help="Spleeter configuration: spleeter:<name> or a JSON file (default spleeter:2stems)")
    args = parser.parse_args(argv)
    # Frames go to a private copy of stdout; fd 1 is pointed at stderr so library prints cannot corrupt them.
    frames_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return serve(args.params, sys.stdin.buffer, frames_out)


if __name__ == "__main__":
    sys.exit(main())
else:  # imported by Spleeter (``--adapter spleeter_worker.WaveAudioAdapter``) inside its environment
    try:
        WaveAudioAdapter = _define_adapter()
    except ImportError:  # imported without spleeter (e.g. to reuse the framing helpers): no adapter
        pass
