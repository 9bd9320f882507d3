"""Which mouth a frame gets: the pose of the audio that will be playing when the frame is sent.

A frame's motion is taken when the scheduler plans it, but the frame leaves (and the receiver
places it, via RTCP sender reports) a render later. So the mouth is read ahead on the audio
timeline by the measured plan-to-hand-over lag (a running average over recent frames) plus
the encode. The bias errs towards the mouth being early: BT.1359 tolerates audio behind the
picture (125 ms) far more than audio ahead of it (45 ms). (The viseme analyser already
anticipates each shape a little, as lips do before the sound.)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine.motion import Motion
from streamer.sessions import speech_mouth
from streamer.sessions.speech import SpeechPlayer

ENCODE_S = 0.012  # RGB->I420 + VP8 at 512 px, measured in shared/notes/webrtc.md
EARLY_BIAS_S = 0.01
INITIAL_LAG_S = 0.05
MAX_LAG_S = 0.3  # a stall is not a render lag: never look further ahead than this
EWMA = 0.2


@dataclass
class LipSync:
    lag_s: float = INITIAL_LAG_S
    # The newest handed-over frame's presentation time: the timeline instant (monotonic
    # seconds) whose audio its mouth shows. Sent with WebSocket frames (docs/protocol.md).
    last_pts: float = 0.0
    _planned: list[tuple[Motion, float, float]] = field(default_factory=list)

    def lead_s(self) -> float:
        return min(MAX_LAG_S, self.lag_s) + ENCODE_S + EARLY_BIAS_S

    def apply(self, motion: Motion, speech: SpeechPlayer, now: float) -> Motion:
        """The planned motion with the mouth of the audio playing at its expected send time."""
        at = now + self.lead_s()
        pose = speech.pose_at(at)
        if pose is not None:
            motion = replace(motion, mouth=pose)
            if speech_mouth.FOLD_MOUTH_INTO_CONTROLS:
                opened = min(1.0, motion.controls.mouth_open + speech_mouth.mouth_opening(pose))
                motion = motion.with_controls(mouth_open=opened)
        self._planned.append((motion, now, at))
        del self._planned[:-8]  # frames in flight are few; old plans were reused or dropped
        return motion

    def handed_over(self, motion: Motion | None, now: float) -> None:
        """A frame rendered from ``motion`` is out: learn the plan-to-hand-over lag."""
        for i, (m, planned, at) in enumerate(self._planned):
            if m is motion:
                del self._planned[:i + 1]
                lag = min(MAX_LAG_S, max(0.0, now - planned))
                self.lag_s += EWMA * (lag - self.lag_s)
                self.last_pts = at
                return
        self.last_pts = now + ENCODE_S  # a reused frame: it shows what plays as it leaves
