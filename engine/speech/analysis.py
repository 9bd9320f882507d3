"""Audio -> mouth poses, streaming (live sessions) or offline (video renders).

Two sources are combined per 10 ms hop:
- pocketsphinx phones (engine/speech/phones.py) give the mouth *shape* (phonemes.ARPABET);
- acoustics (engine/speech/acoustics.py) give the *amount* (loudness relative to the recent
  peak), silence, and two lip gestures a phone recogniser often misses on synthetic or noisy
  speech: a stop closure inside speech (p/b: the lips press together just before the burst)
  and a low, nasal murmur (m). Weak fricatives (f, v, th), which the recogniser confuses among
  themselves, become lip-on-teeth; loud ones (s, z) spread.
engine/speech/coarticulation.py then smooths the hop targets into poses (attack/release,
anticipation). Look-ahead: a frame at time t is ready once audio up to t + lookahead_ms is in.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import av
import numpy as np

from engine.speech import phones as phones_mod
from engine.speech.acoustics import CENTROID, HIGH_SHARE, LEVEL_DB, LOW_SHARE, RATE, AcousticFrontEnd
from engine.speech.coarticulation import ANTICIPATE_S, HOP_S, Coarticulator, n_frames_for, to_pose
from engine.speech.phonemes import ARPABET, SILENT
from engine.speech.visemes import VISEMES, MouthPose

MAX_LOOKAHEAD_MS = 100.0
DEFAULT_LOOKAHEAD_MS = 80.0
_HOP_MS = HOP_S * 1000.0
_SILENCE_DBFS = -55.0      # absolute gate
_RANGE_DB = 35.0           # below the running peak by more than this: silence
_PEAK_DECAY_DB = 0.03      # per hop (3 dB/s): the peak follows a speaker getting quieter
_CLOSURE_MAX_HOPS = 25     # a gap this short inside speech is a stop closure, not a pause
_RESTART_SILENT_HOPS = 40  # restart the phone decoder after 0.4 s of silence
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
_WEAK_FRICATIVES = {"F", "V", "TH", "DH", "Z", "S", "HH"}
_CLOSED, _OPEN, _ROUND, _SPREAD, _TEETH = (VISEMES.index(v) for v in VISEMES)


def _to_16k_resampler(sample_rate: int) -> av.AudioResampler | None:
    return None if sample_rate == RATE else av.AudioResampler(format="s16", layout="mono", rate=RATE)


@dataclass
class _HopState:
    peak_db: float = -25.0
    last_speech_hop: int = -10_000
    silent_run: int = 0


@dataclass
class VisemeAnalyser:
    """Streaming analyser. ``feed`` int16 mono PCM at ``sample_rate``; read poses frame by
    frame (``poses_ready``/``next_pose``) once their look-ahead has arrived; ``finish`` at the
    end of an utterance releases the last frames. Memory stays bounded: only undelivered poses,
    the current phone utterance and a few hops of features are kept.
    """

    sample_rate: int
    fps: float
    lookahead_ms: float = DEFAULT_LOOKAHEAD_MS
    use_phones: bool = True
    _resampler: av.AudioResampler | None = field(init=False, default=None)
    _front: AcousticFrontEnd = field(init=False, default_factory=AcousticFrontEnd)
    _phones: phones_mod.PhoneStream | None = field(init=False, default=None)
    _ps_buf: np.ndarray = field(init=False, default_factory=lambda: np.zeros(0, np.int16))
    _ps_samples: int = field(init=False, default=0)
    _features: dict[int, np.ndarray] = field(init=False, default_factory=dict)
    _state: _HopState = field(init=False, default_factory=_HopState)
    _smoother: Coarticulator = field(init=False, default_factory=Coarticulator)
    _smoothed: deque = field(init=False, default_factory=lambda: deque(maxlen=64))
    _next_target_hop: int = field(init=False, default=0)
    _next_frame: int = field(init=False, default=0)
    _ready: deque = field(init=False, default_factory=deque)
    _samples_in: int = field(init=False, default=0)
    _finished: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if not 0 <= self.lookahead_ms <= MAX_LOOKAHEAD_MS:
            raise ValueError(f"lookahead_ms must be within 0..{MAX_LOOKAHEAD_MS:g}")
        if self.sample_rate < 8000 or self.sample_rate > 192000:
            raise ValueError("sample_rate must be within 8000..192000")
        if not 1 <= self.fps <= 120:
            raise ValueError("fps must be within 1..120")
        self._resampler = _to_16k_resampler(self.sample_rate)
        if self.use_phones and phones_mod.available():
            self._phones = phones_mod.PhoneStream()
        # Hop targets need this many hops after them (phone labels settle); the rest of the
        # look-ahead goes to anticipation.
        self._label_lag = max(0, int(round((self.lookahead_ms / 1000.0 - ANTICIPATE_S) / HOP_S)))
        self._anticipate_hops = int(round(min(ANTICIPATE_S, self.lookahead_ms / 1000.0) / HOP_S))

    def reset(self) -> None:
        """Start a new utterance from t = 0, keeping the loaded phone decoder (loading one
        takes 0.1-0.5 s; an interrupt or a new utterance should not pay it again)."""
        decoder = self._phones.decoder if self._phones is not None else None
        if self._phones is not None and self._phones.in_utt:
            self._phones.decoder.end_utt()
        self._resampler = _to_16k_resampler(self.sample_rate)
        self._front = AcousticFrontEnd()
        self._phones = phones_mod.PhoneStream(decoder=decoder) if decoder is not None else None
        self._ps_buf = np.zeros(0, np.int16)
        self._ps_samples = 0
        self._features = {}
        self._state = _HopState()
        self._smoother = Coarticulator()
        self._smoothed = deque(maxlen=64)
        self._next_target_hop = 0
        self._next_frame = 0
        self._ready = deque()
        self._samples_in = 0
        self._finished = False

    # -- input -------------------------------------------------------------------------------
    def feed(self, pcm: np.ndarray) -> None:
        if self._finished:
            raise RuntimeError("feed after finish")
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError("feed takes a 1-D int16 (mono) array")
        if not len(pcm):
            return
        self._samples_in += len(pcm)
        self._consume(self._resample(pcm))

    def finish(self) -> None:
        """End of the audio: flush the resampler and release every remaining frame."""
        if self._finished:
            return
        tail = np.zeros(0, np.int16)
        if self._resampler is not None:
            tail = np.concatenate([f.to_ndarray().reshape(-1) for f in self._resampler.resample(None)] or [tail])
        self._consume(tail, final=True)
        self._finished = True

    def _resample(self, pcm: np.ndarray) -> np.ndarray:
        if self._resampler is None:
            return pcm
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)

    def _consume(self, pcm16k: np.ndarray, final: bool = False) -> None:
        rows = self._front.feed(pcm16k.astype(np.float32) / 32768.0)
        if final:
            rows = np.concatenate([rows, self._front.flush()])
        first = self._front.next_hop - len(rows)
        for i, row in enumerate(rows):
            self._features[first + i] = row
        if self._phones is not None:
            self._feed_phones(pcm16k, final)
        self._advance(final)

    def _feed_phones(self, pcm16k: np.ndarray, final: bool) -> None:
        buf = np.concatenate([self._ps_buf, pcm16k.astype(np.int16)])
        n = (len(buf) // 160) * 160
        if n:
            self._phones.feed(buf[:n])
            self._ps_samples += n
        self._ps_buf = buf[n:]
        at_hop = self._ps_samples // 160
        long_pause = self._state.silent_run >= _RESTART_SILENT_HOPS and self._phones.hops_in_utt > _RESTART_SILENT_HOPS
        if final or long_pause or self._phones.hops_in_utt >= phones_mod.MAX_UTT_HOPS:
            self._phones.restart(at_hop)

    # -- hop targets -------------------------------------------------------------------------
    def _advance(self, final: bool) -> None:
        have = self._front.next_hop  # hops with features
        limit = have if final else have - self._label_lag
        while self._next_target_hop < limit:
            h = self._next_target_hop
            self._smoothed.append((h, self._smoother.push(self._target(h, have))))
            self._next_target_hop += 1
            self._features.pop(h - _CLOSURE_MAX_HOPS - 1, None)
            if self._phones is not None:
                self._phones.forget_before(h - 2)
            self._emit_frames(False)  # now: _smoothed keeps only the last hops
        self._emit_frames(final)

    def _is_speech(self, row: np.ndarray) -> bool:
        return row[LEVEL_DB] > max(_SILENCE_DBFS, self._state.peak_db - _RANGE_DB)

    def _target(self, h: int, have: int) -> np.ndarray:
        row = self._features[h]
        st = self._state
        level = float(row[LEVEL_DB])
        st.peak_db = max(level, st.peak_db - _PEAK_DECAY_DB, -40.0)
        below = st.peak_db - level
        if not self._is_speech(row):
            st.silent_run += 1
            # A short gap inside speech that ends within the look-ahead: a stop closure.
            resumes = any(self._is_speech(self._features[k]) for k in range(h + 1, have) if k in self._features)
            if h - st.last_speech_hop <= _CLOSURE_MAX_HOPS and resumes:
                return _onehot(_CLOSED, 0.9)
            return SILENT
        st.silent_run = 0
        st.last_speech_hop = h
        label = self._phones.label(h) if self._phones is not None else ""
        amount = float(np.clip((_RANGE_DB - below) / 20.0, 0.25, 1.0))
        if label in _VOWELS:
            return ARPABET[label] * amount
        if label in ("M", "B", "P", "F", "V"):
            return ARPABET[label].copy()
        murmur = row[LOW_SHARE] >= 0.8 and below >= 6.0 and row[HIGH_SHARE] < 0.1
        if label not in _VOWELS and below >= 12.0 and row[HIGH_SHARE] >= 0.15 and row[CENTROID] < 3500.0:
            # Weak noise: a non-sibilant fricative, whatever the recogniser's guess.
            return _onehot(_TEETH, 0.9)
        if label in _WEAK_FRICATIVES:
            # Sibilants are loud and hissy; f, v, th are weak (and v has a murmur-like voice bar).
            if below >= 14.0 and row[CENTROID] < 3500.0:
                return _onehot(_TEETH, 0.9)
            return ARPABET.get(label, SILENT).copy()
        if murmur and (label in ("", "SIL", "N", "NG", "L", "W", "R") or label not in ARPABET):
            return _onehot(_CLOSED, 0.85)
        if label in ARPABET and label != "SIL":
            return ARPABET[label] * max(amount, 0.6)
        # No phone (no recogniser, or the recogniser says silence in speech): loudness and a
        # coarse spectral guess (a low centroid reads as rounded, a high one as spread).
        w = np.zeros(len(VISEMES), np.float32)
        w[_OPEN] = 0.6 * amount
        if row[CENTROID] < 700.0:
            w[_ROUND] = 0.3 * amount
        elif row[CENTROID] > 1800.0:
            w[_SPREAD] = 0.3 * amount
        return w

    # -- frames ------------------------------------------------------------------------------
    def _emit_frames(self, final: bool) -> None:
        if not self._smoothed:
            return
        last_hop = self._smoothed[-1][0]
        total_frames = n_frames_for(self._samples_in / self.sample_rate, self.fps) if final else None
        while True:
            k = self._next_frame
            if total_frames is not None and k >= total_frames:
                break
            h = int(round(k / self.fps / HOP_S)) + self._anticipate_hops
            if h > last_hop:
                if not final:
                    break
                h = last_hop
            self._ready.append(to_pose(self._smoothed_at(h)))
            self._next_frame += 1

    def _smoothed_at(self, h: int) -> np.ndarray:
        for hop, w in reversed(self._smoothed):
            if hop <= h:
                return w
        return self._smoothed[0][1]

    # -- output ------------------------------------------------------------------------------
    def poses_ready(self) -> int:
        return len(self._ready)

    def next_pose(self) -> MouthPose:
        """The next frame's pose (frame k is at k / fps of the fed audio). IndexError if none."""
        return self._ready.popleft()

    def drain(self) -> list[MouthPose]:
        out = list(self._ready)
        self._ready.clear()
        return out

    @property
    def frames_emitted(self) -> int:
        return self._next_frame


def _onehot(i: int, value: float) -> np.ndarray:
    w = np.zeros(len(VISEMES), np.float32)
    w[i] = value
    return w


def analyse(pcm: np.ndarray, sample_rate: int, fps: float, chunk_s: float = 0.5,
            use_phones: bool = True) -> list[MouthPose]:
    """Offline: one pose per video frame for the whole clip (round(duration * fps) frames)."""
    an = VisemeAnalyser(sample_rate, fps, use_phones=use_phones)
    step = max(1, int(chunk_s * sample_rate))
    out: list[MouthPose] = []
    for i in range(0, len(pcm), step):
        an.feed(np.ascontiguousarray(pcm[i:i + step], dtype=np.int16))
        out.extend(an.drain())
    an.finish()
    out.extend(an.drain())
    return out
