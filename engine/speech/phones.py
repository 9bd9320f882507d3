"""Streaming phone recognition with pocketsphinx (CMU Sphinx), whose en-us acoustic model and
phone language model ship inside the pip wheel: no download at run time.

Allphone mode decodes phones (ARPAbet) with 10 ms frame timings. The partial segmentation is
read after every feed; labels of recent frames can still change, which is why the analyser
reads a frame's label only once some look-ahead has arrived.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

try:  # optional: without it the analyser falls back to acoustics alone
    from pocketsphinx import Decoder, get_model_path
except ImportError:  # pragma: no cover - exercised only where pocketsphinx is absent
    Decoder = None  # type: ignore[assignment]

# A long utterance keeps its whole lattice in memory: restart at pauses and at this length.
MAX_UTT_HOPS = 3000  # 30 s


def available() -> bool:
    return Decoder is not None


def _decoder() -> "Decoder":
    mp = get_model_path()
    # lw 2: the phone LM's weight; low, so that acoustics (not phonotactics) decide.
    return Decoder(hmm=os.path.join(mp, "en-us", "en-us"),
                   allphone=os.path.join(mp, "en-us", "en-us-phone.lm.bin"),
                   lw=2.0, loglevel="FATAL")


@dataclass
class PhoneStream:
    """Feed 16 kHz int16 mono; ``labels`` maps absolute hop index -> ARPAbet phone."""

    decoder: object = field(default_factory=_decoder)
    utt_start_hop: int = 0
    hops_in_utt: int = 0
    in_utt: bool = False
    labels: dict[int, str] = field(default_factory=dict)

    def feed(self, pcm16k: np.ndarray) -> None:
        if not self.in_utt:
            self.decoder.start_utt()
            self.in_utt = True
        self.decoder.process_raw(pcm16k.astype(np.int16).tobytes(), False, False)
        self.hops_in_utt += len(pcm16k) // 160
        self._read_segments()

    def _read_segments(self) -> None:
        for seg in self.decoder.seg() or []:
            for f in range(seg.start_frame, seg.end_frame + 1):
                self.labels[self.utt_start_hop + f] = seg.word

    def restart(self, at_hop: int) -> None:
        """End the utterance (final labels) and start counting the next one at ``at_hop``."""
        if self.in_utt:
            self.decoder.end_utt()
            self._read_segments()
            self.in_utt = False
        self.utt_start_hop = at_hop
        self.hops_in_utt = 0

    def label(self, hop: int) -> str:
        return self.labels.get(hop, "SIL")

    def forget_before(self, hop: int) -> None:
        for h in [h for h in self.labels if h < hop]:
            del self.labels[h]
