"""Idle motion: random natural blinks every 2-6 s, a slight head sway, breathing.

Pure function of time and a per-session random generator, so tests can seed it.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from engine.motion import IdleState

BLINK_CLOSE_S = 0.07
BLINK_HOLD_S = 0.04
BLINK_OPEN_S = 0.12
BLINK_S = BLINK_CLOSE_S + BLINK_HOLD_S + BLINK_OPEN_S


def blink_amount(t: float) -> float:
    """0 open .. 1 closed, t seconds after a blink started (fast close, slower open)."""
    if t < 0 or t >= BLINK_S:
        return 0.0
    if t < BLINK_CLOSE_S:
        return t / BLINK_CLOSE_S
    if t < BLINK_CLOSE_S + BLINK_HOLD_S:
        return 1.0
    return 1.0 - (t - BLINK_CLOSE_S - BLINK_HOLD_S) / BLINK_OPEN_S


@dataclass
class IdleAnimator:
    rng: random.Random = field(default_factory=random.Random)
    min_gap_s: float = 2.0
    max_gap_s: float = 6.0
    _next_blink: float | None = None
    _phases: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self._phases = tuple(self.rng.uniform(0, 2 * math.pi) for _ in range(5))

    def state(self, now: float) -> IdleState:
        if self._next_blink is None:
            self._next_blink = now + self.rng.uniform(self.min_gap_s, self.max_gap_s)
        if now >= self._next_blink + BLINK_S:
            # Schedule the next blink; if the loop stalled for long, start afresh from now.
            self._next_blink = max(self._next_blink + BLINK_S, now) + \
                self.rng.uniform(self.min_gap_s, self.max_gap_s)
        p = self._phases
        tau = 2 * math.pi
        # Incommensurate periods so the sway never visibly repeats; amplitudes in degrees.
        yaw = 1.6 * math.sin(tau * now / 7.3 + p[0]) + 0.5 * math.sin(tau * now / 3.1 + p[1])
        pitch = 0.9 * math.sin(tau * now / 5.9 + p[2])
        roll = 0.7 * math.sin(tau * now / 8.7 + p[3])
        breath = math.sin(tau * now / 4.2 + p[4])
        return IdleState(blink=blink_amount(now - self._next_blink), yaw=yaw, pitch=pitch,
                         roll=roll, breath=breath)
