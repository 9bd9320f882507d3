"""One session's speech: queued utterances, and the audio timeline every viewer plays.

The audio clock is the master. Time maps to a sample position on one 48 kHz timeline
anchored at the player's creation (``position(now)``). Queued audio is *committed* onto the
timeline a little ahead of now, together with its mouth poses (one per 10 ms hop). Every
audio track reads the timeline at its own send time, and every video frame takes the mouth
pose of the position that will be playing when the frame goes out. Both read the same
committed samples, so lips and sound cannot drift apart.

When the queue runs dry in the middle of an utterance, the timeline gets silence (the mouth
rests) and the next audio is committed a short lead after "now": the utterance resumes
later, never compressed or stretched. ``interrupt`` cuts the timeline at "now".
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import av
import numpy as np

from engine.speech.timings import Timing
from engine.speech.visemes import VISEMES, MouthPose
from streamer.sessions import speech_events
from streamer.sessions.speech_mouth import HOP, RATE, MouthAnalyser, make_analyser

log = logging.getLogger(__name__)

INPUT_RATES = (16_000, 24_000, 48_000)
MAX_QUEUED_S = 120.0  # audio waiting to play, all utterances of a session together
MAX_UTTERANCES = 64  # queued or playing
RING_S = 8.0  # timeline history kept for late readers (a track whose loop stalled)
COMMIT_AHEAD_S = 0.35  # how far ahead of now audio is committed (covers the video look-ahead)
RESUME_LEAD_S = 0.12  # after silence, audio starts this far after now, so video sees it coming
MIN_LEAD_S = 0.03  # a committed timeline closer to now than this counts as run dry
TICK_S = 0.02
# Analyse at most this far ahead of playback: audio sent all at once is then analysed at the
# pace it plays, not in one burst that starves the renders of every session.
ANALYSE_AHEAD_S = 1.5
INPUT_STEP_S = 0.25  # big input chunks are analysed in pieces of this length

_serials = itertools.count(1)


class SpeechError(Exception):
    """Bad speech input: becomes an error event (WebSocket) or a 4xx (REST)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Fifo:
    """int16 chunks with O(1) appends; take() returns exactly n samples (zero-padded)."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self.size = 0

    def append(self, x: np.ndarray) -> None:
        if x.size:
            self._chunks.append(x)
            self.size += x.size

    def take(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.int16)
        i = 0
        while i < n and self._chunks:
            c = self._chunks[0]
            k = min(n - i, c.size)
            out[i:i + k] = c[:k]
            i += k
            if k == c.size:
                self._chunks.popleft()
            else:
                self._chunks[0] = c[k:]
        self.size -= min(self.size, i)
        return out


@dataclass
class Utterance:
    id: object
    sample_rate: int
    timings: list[Timing] | None = None  # the client's, replacing the analysis
    # Made in the worker thread on first use: building the phone recogniser takes 0.2-0.4 s.
    analyser: MouthAnalyser | None = None
    serial: int = field(default_factory=lambda: next(_serials))
    resampler: av.AudioResampler | None = None
    audio: _Fifo = field(default_factory=_Fifo)  # 48 kHz, not yet committed
    poses: deque = field(default_factory=deque)  # one MouthPose per hop, aligned with audio
    ended: bool = False  # speak_end came: what is queued is all there is
    overflowed: bool = False
    samples_in: int = 0  # at the input rate
    start_pos: int | None = None  # first committed sample on the timeline
    end_pos: int | None = None  # set once the last hop is committed
    committed_hops: int = 0
    started_sent: bool = False
    interrupted: bool = False
    # Input not yet resampled and analysed (the analysis runs in a worker thread, in order).
    raw: deque = field(default_factory=deque)
    raw_samples: int = 0
    end_requested: bool = False
    worker: asyncio.Task | None = None

    def ready_hops(self) -> int:
        hops = self.audio.size // HOP
        if self.ended and self.audio.size % HOP:
            hops += 1
        return min(hops, len(self.poses))

    def finished_input(self) -> bool:
        return self.ended and self.ready_hops() == 0


def _resample(u: Utterance, pcm: np.ndarray | None) -> np.ndarray:
    """int16 at the utterance's rate -> int16 at 48 kHz; None flushes the resampler."""
    if u.sample_rate == RATE:
        return pcm if pcm is not None else np.zeros(0, np.int16)
    if u.resampler is None:
        u.resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    frame = None
    if pcm is not None:
        if pcm.size == 0:
            return pcm
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = u.sample_rate
    out = [f.to_ndarray().reshape(-1) for f in u.resampler.resample(frame)]
    return np.concatenate(out).astype(np.int16, copy=False) if out else np.zeros(0, np.int16)


def _process(u: Utterance, pcm: np.ndarray | None) -> tuple[np.ndarray, list, bool]:
    """Worker thread: one input chunk (None: the end) -> 48 kHz audio, its new poses, and
    whether this was the end."""
    if u.analyser is None:
        u.analyser = make_analyser(u.timings)
    x = _resample(u, pcm)
    poses = u.analyser.push(x.astype(np.float32) / 32768.0) if x.size else []
    if pcm is None:
        poses = poses + u.analyser.flush()
    return x, poses, pcm is None


# The analysis (phone recogniser, resampling) must never run on the event loop: it would
# stall every session's audio and video. Two threads serve all sessions, one chunk at a time
# per utterance, so each utterance's chunks stay in order.
_POOL = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="speech-analysis")


class SpeechPlayer:
    """The timeline of one session. Everything runs on the event loop; no locks needed."""

    def __init__(self, on_event: Callable[[dict], None] | None = None,
                 max_queued_s: float = MAX_QUEUED_S, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.on_event = on_event or (lambda ev: None)
        self.max_queued_s = max_queued_s
        self.clock = clock
        self.t0 = clock()
        n = int(RING_S * RATE) // HOP * HOP
        self._ring = np.zeros(n, np.int16)
        self._ring_poses = np.zeros((n // HOP, len(VISEMES)), np.float32)
        self._ring_owner = np.zeros(n // HOP, np.int64)  # utterance serial per hop, 0: silence
        self.commit_pos = self._hop_ceil(0)
        self.read_pos = 0  # highest sample any audio track has read
        self.utterances: deque[Utterance] = deque()  # queued or playing, in play order
        self._ticker: asyncio.Task | None = None
        self.closed = False

    # --- clock ---
    def position(self, now: float) -> int:
        return int((now - self.t0) * RATE)

    @staticmethod
    def ms(pos: int) -> float:
        """A timeline position in milliseconds (the pts_ms clock of events and frames)."""
        return round(pos * 1000.0 / RATE, 1)

    @staticmethod
    def _hop_ceil(pos: int) -> int:
        return -(-pos // HOP) * HOP

    # --- input ---
    def queued_seconds(self) -> float:
        return sum(u.audio.size / RATE + u.raw_samples / u.sample_rate for u in self.utterances)

    def begin(self, utterance_id: object, sample_rate: int,
              timings: list[Timing] | None = None) -> Utterance:
        """timings: the client's phoneme/viseme timings, which replace the analysis."""
        if sample_rate not in INPUT_RATES:
            raise SpeechError("invalid_value", "speak: 'sample_rate' must be one of "
                              + ", ".join(map(str, INPUT_RATES)))
        if sum(1 for u in self.utterances if not u.interrupted) >= MAX_UTTERANCES:
            raise SpeechError("speech_queue_full",
                              f"at most {MAX_UTTERANCES} utterances may be queued")
        u = Utterance(utterance_id, sample_rate, timings)
        self.utterances.append(u)
        return u

    def feed(self, u: Utterance, pcm: np.ndarray) -> None:
        """int16 mono at u.sample_rate. Past the bound, raises once and drops the rest of u."""
        if u.interrupted or u.end_requested or u.overflowed:
            return
        if self.queued_seconds() + pcm.size / u.sample_rate > self.max_queued_s:
            u.overflowed = True
            raise SpeechError("speech_buffer_full",
                              f"more than {self.max_queued_s:g} s of speech queued; the rest of "
                              f"utterance {u.id!r} is dropped (send audio closer to real time)")
        if pcm.size == 0:
            return
        u.samples_in += pcm.size
        step = int(INPUT_STEP_S * u.sample_rate)  # small steps: analysis paces with playback
        for i in range(0, pcm.size, step):
            u.raw.append(pcm[i:i + step])
        u.raw_samples += pcm.size
        self._kick(u)

    def end(self, u: Utterance) -> None:
        if u.end_requested:
            return
        u.end_requested = True
        self._kick(u)

    def _kick(self, u: Utterance) -> None:
        """Start the utterance's analysis worker (inline when there is no event loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            while not u.interrupted and (u.raw or (u.end_requested and not u.ended)):
                self._take(u, *_process(u, self._next_raw(u)))
            return
        if u.worker is None or u.worker.done():
            u.worker = loop.create_task(self._work(u))

    def _next_raw(self, u: Utterance) -> np.ndarray | None:
        if u.raw:
            pcm = u.raw.popleft()
            u.raw_samples -= pcm.size
            return pcm
        return None  # only the end is left

    async def _work(self, u: Utterance) -> None:
        loop = asyncio.get_running_loop()
        while not u.interrupted and not self.closed and (u.raw or (u.end_requested and not u.ended)):
            while self._analysed_ahead_s(u) > ANALYSE_AHEAD_S and not u.interrupted \
                    and not self.closed:
                await asyncio.sleep(0.1)
            if u.interrupted or self.closed:
                return
            pcm = self._next_raw(u)
            result = await loop.run_in_executor(_POOL, _process, u, pcm)
            if u.interrupted or self.closed:
                return
            self._take(u, *result)

    def _analysed_ahead_s(self, u: Utterance) -> float:
        """Analysed audio waiting to play up to and including u, plus u's committed future."""
        waiting = 0
        for v in self.utterances:
            waiting += v.audio.size
            if v is u:
                break
        ahead = max(0, self.commit_pos - self.position(self.clock()))
        return (waiting + ahead) / RATE

    def _take(self, u: Utterance, audio: np.ndarray, poses: list, final: bool) -> None:
        u.audio.append(audio)
        u.poses.extend(poses)
        if final:
            u.ended = True  # the analyser is flushed: what is queued is all there is
        self._ensure_ticker()
        self.advance()

    # --- the timeline ---
    def advance(self, now: float | None = None) -> None:
        """Commit ready audio, then send the events of whatever started or ended by now."""
        now = self.clock() if now is None else now
        pn = self.position(now)
        horizon = self.position(now + COMMIT_AHEAD_S)
        for u in self.utterances:
            if u.end_pos is not None:
                continue
            while self.commit_pos < horizon and u.ready_hops() > 0:
                if self.commit_pos < pn + int(MIN_LEAD_S * RATE):
                    # run dry (or idle): restart a lead after now, silence up to there
                    self._silence_to(self._hop_ceil(max(pn + int(RESUME_LEAD_S * RATE),
                                                        self.read_pos)))
                self._commit_hop(u)
            if u.finished_input():
                u.end_pos = self.commit_pos if u.start_pos is not None else None
                if u.start_pos is None:  # nothing to play: an empty utterance
                    u.start_pos = u.end_pos = self.commit_pos
                continue
            break  # u still has audio to come: later utterances wait behind it
        self._events(pn)

    def _silence_to(self, pos: int) -> None:
        while self.commit_pos < pos:
            h = (self.commit_pos // HOP) % len(self._ring_owner)
            i = h * HOP
            self._ring[i:i + HOP] = 0
            self._ring_owner[h] = 0
            self._ring_poses[h] = 0.0
            self.commit_pos += HOP

    def _commit_hop(self, u: Utterance) -> None:
        h = (self.commit_pos // HOP) % len(self._ring_owner)
        i = h * HOP
        self._ring[i:i + HOP] = u.audio.take(HOP)
        self._ring_poses[h] = u.poses.popleft().weights
        self._ring_owner[h] = u.serial
        if u.start_pos is None:
            u.start_pos = self.commit_pos
        u.committed_hops += 1
        self.commit_pos += HOP

    def _events(self, pn: int) -> None:
        while self.utterances:
            u = self.utterances[0]
            if not u.started_sent and u.start_pos is not None and u.start_pos <= pn \
                    and u.committed_hops > 0:
                u.started_sent = True
                self.on_event(speech_events.started(u.id, self.ms(u.start_pos)))
            if u.end_pos is None or u.end_pos > pn:
                break
            self.utterances.popleft()
            self.on_event(speech_events.ended(u.id, u.committed_hops * HOP * 1000 // RATE,
                                              False, self.ms(u.end_pos)))

    def interrupt(self, now: float | None = None) -> int:
        """Drop everything queued and cut the timeline at now. Returns how many utterances
        were cut (each gets speech_ended with interrupted=true)."""
        now = self.clock() if now is None else now
        pn = self.position(now)
        cut = self._hop_ceil(max(pn, self.read_pos))
        cut = min(cut, self.commit_pos)
        # hops already committed past the cut are taken back from their utterances
        for pos in range(cut, self.commit_pos, HOP):
            h = (pos // HOP) % len(self._ring_owner)
            owner = self._ring_owner[h]
            for u in self.utterances:
                if u.serial == owner:
                    u.committed_hops -= 1
            self._ring[h * HOP:(h + 1) * HOP] = 0
            self._ring_owner[h] = 0
            self._ring_poses[h] = 0.0
        self.commit_pos = cut
        self._events(pn)  # what already played out ends normally
        cut_n = 0
        while self.utterances:
            u = self.utterances.popleft()
            u.interrupted = True
            u.audio = _Fifo()
            u.poses.clear()
            u.raw.clear()
            u.raw_samples = 0
            cut_n += 1
            if u.committed_hops > 0 and not u.started_sent:
                u.started_sent = True  # it played a little: report the start it had
                self.on_event(speech_events.started(u.id, self.ms(u.start_pos or cut)))
            self.on_event(speech_events.ended(u.id, u.committed_hops * HOP * 1000 // RATE, True,
                                              self.ms(cut)))
        return cut_n

    # --- readers ---
    def read(self, pos: int, n: int) -> np.ndarray:
        """n samples of the timeline from pos (an audio track's next frame)."""
        self.advance()
        self.read_pos = max(self.read_pos, pos + n)
        out = np.zeros(n, np.int16)
        size = len(self._ring)
        lo = max(pos, self.commit_pos - size)  # older than the ring: gone
        hi = min(pos + n, self.commit_pos)
        if hi > lo:
            idx = np.arange(lo, hi) % size
            out[lo - pos:hi - pos] = self._ring[idx]
        return out

    def pose_at(self, now: float) -> MouthPose | None:
        """The mouth for the sample playing at ``now`` (None: not speaking)."""
        pos = self.position(now)
        if pos < 0 or pos >= self.commit_pos or pos < self.commit_pos - len(self._ring):
            return None
        h = (pos // HOP) % len(self._ring_owner)
        if self._ring_owner[h] == 0:
            return None
        return MouthPose(tuple(float(w) for w in self._ring_poses[h]))

    def active(self) -> bool:
        return bool(self.utterances)

    # --- housekeeping ---
    def _ensure_ticker(self) -> None:
        """Events must fire on time even with no viewer reading audio: tick while speaking."""
        if (self._ticker is None or self._ticker.done()) and not self.closed:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (unit tests drive advance() themselves)
                return
            self._ticker = loop.create_task(self._tick())

    async def _tick(self) -> None:
        while not self.closed and self.utterances:
            self.advance()
            await asyncio.sleep(TICK_S)

    def close(self) -> None:
        self.closed = True
        if self._ticker is not None:
            self._ticker.cancel()
