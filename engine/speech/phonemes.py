"""Phoneme and viseme labels -> viseme weight vectors (VISEMES order).

Three label sets are understood, so that timings from most TTS services map without glue:
ARPAbet (CMUdict, pocketsphinx; stress digits ignored), IPA (the basic symbols; a multi-symbol
label such as a diphthong takes its first symbol), and viseme names: ours (VISEMES) and the
Oculus/Meta set (sil, PP, FF, TH, DD, kk, CH, SS, nn, RR, aa, E, I, O, U) that Azure, ElevenLabs
and others build on. Unknown labels give a small neutral opening rather than an error, so one
odd symbol in a long timing list does not fail a render.
"""
from __future__ import annotations

import numpy as np

from engine.speech.visemes import VISEMES

_N = len(VISEMES)


def _w(closed: float = 0.0, open: float = 0.0, round: float = 0.0, spread: float = 0.0,  # noqa: A002
       teeth_lip: float = 0.0) -> np.ndarray:
    return np.array([closed, open, round, spread, teeth_lip], dtype=np.float32)


SILENT = _w()
# Consonants whose lips are neither closed nor shaped: a slight, neutral opening.
_NEUTRAL = _w(open=0.25, spread=0.1)

# ARPAbet (39 phones of CMUdict + pocketsphinx's SIL/noise fillers).
ARPABET: dict[str, np.ndarray] = {
    # vowels
    "AA": _w(open=1.0), "AE": _w(open=0.75, spread=0.25), "AH": _w(open=0.7),
    "AO": _w(open=0.65, round=0.35), "AW": _w(open=0.6, round=0.4), "AY": _w(open=0.75, spread=0.25),
    "EH": _w(open=0.5, spread=0.5), "ER": _w(open=0.3, round=0.5), "EY": _w(open=0.3, spread=0.7),
    "IH": _w(open=0.2, spread=0.8), "IY": _w(spread=1.0), "OW": _w(open=0.3, round=0.7),
    "OY": _w(open=0.3, round=0.7), "UH": _w(open=0.2, round=0.8), "UW": _w(round=1.0),
    # bilabials, labiodentals
    "M": _w(closed=1.0), "B": _w(closed=1.0), "P": _w(closed=1.0),
    "F": _w(teeth_lip=1.0), "V": _w(teeth_lip=1.0),
    # rounded / protruded consonants
    "W": _w(round=1.0), "R": _w(round=0.6, open=0.15), "SH": _w(round=0.55, open=0.15),
    "ZH": _w(round=0.55, open=0.15), "CH": _w(round=0.5, open=0.15), "JH": _w(round=0.5, open=0.15),
    # spread-ish consonants (teeth close, lips apart)
    "S": _w(spread=0.45, open=0.05), "Z": _w(spread=0.45, open=0.05), "Y": _w(spread=0.7),
    "TH": _w(open=0.2, spread=0.3), "DH": _w(open=0.2, spread=0.3),
    "T": _w(open=0.15, spread=0.35), "D": _w(open=0.15, spread=0.35), "N": _w(open=0.15, spread=0.35),
    "L": _w(open=0.3, spread=0.2), "K": _NEUTRAL, "G": _NEUTRAL, "NG": _NEUTRAL, "HH": _w(open=0.35),
    "SIL": SILENT, "+NSN+": SILENT, "+SPN+": SILENT, "+BREATH+": SILENT, "+NOISE+": SILENT,
}

IPA: dict[str, np.ndarray] = {
    "a": ARPABET["AA"], "ɑ": ARPABET["AA"], "ɒ": ARPABET["AO"], "æ": ARPABET["AE"], "ʌ": ARPABET["AH"],
    "ɐ": ARPABET["AH"], "ə": _w(open=0.45), "ɜ": ARPABET["ER"], "ɚ": ARPABET["ER"], "ɝ": ARPABET["ER"],
    "e": ARPABET["EY"], "ɛ": ARPABET["EH"], "i": ARPABET["IY"], "ɪ": ARPABET["IH"], "ɨ": ARPABET["IH"],
    "o": ARPABET["OW"], "ɔ": ARPABET["AO"], "u": ARPABET["UW"], "ʊ": ARPABET["UH"], "y": _w(round=1.0),
    "ø": _w(round=0.8, open=0.2), "œ": _w(round=0.6, open=0.4), "ɯ": _w(spread=0.6),
    "m": ARPABET["M"], "b": ARPABET["B"], "p": ARPABET["P"], "ɱ": ARPABET["F"],
    "f": ARPABET["F"], "v": ARPABET["V"], "ʋ": ARPABET["V"],
    "w": ARPABET["W"], "ɹ": ARPABET["R"], "r": ARPABET["R"], "ʁ": _NEUTRAL, "ɾ": ARPABET["D"],
    "ʃ": ARPABET["SH"], "ʒ": ARPABET["ZH"], "s": ARPABET["S"], "z": ARPABET["Z"], "j": ARPABET["Y"],
    "θ": ARPABET["TH"], "ð": ARPABET["DH"], "t": ARPABET["T"], "d": ARPABET["D"], "n": ARPABET["N"],
    "l": ARPABET["L"], "k": ARPABET["K"], "g": ARPABET["G"], "ɡ": ARPABET["G"], "ŋ": ARPABET["NG"],
    "h": ARPABET["HH"], "x": _NEUTRAL, "ʔ": SILENT, "ç": ARPABET["Y"],
}

OCULUS: dict[str, np.ndarray] = {
    "sil": SILENT, "PP": ARPABET["P"], "FF": ARPABET["F"], "TH": ARPABET["TH"], "DD": ARPABET["D"],
    "kk": ARPABET["K"], "CH": ARPABET["CH"], "SS": ARPABET["S"], "nn": ARPABET["N"], "RR": ARPABET["R"],
    "aa": ARPABET["AA"], "E": ARPABET["EH"], "I": ARPABET["IH"], "O": ARPABET["OW"], "U": ARPABET["UW"],
}

OURS: dict[str, np.ndarray] = {name: np.eye(_N, dtype=np.float32)[i] for i, name in enumerate(VISEMES)}
OURS["silence"] = SILENT


def phoneme_weights(label: str) -> np.ndarray:
    """Viseme weights for one phoneme (ARPAbet or IPA). Unknown symbols: a neutral opening."""
    s = label.strip()
    if not s:
        return SILENT.copy()
    arpa = s.upper().rstrip("012")
    if arpa in ARPABET:
        return ARPABET[arpa].copy()
    # IPA: drop length/stress/tie marks, then the longest known prefix (diphthongs: first part).
    ipa = "".join(ch for ch in s if ch not in "ːˑˈˌ͡‿̩̯̃")
    for ch in ipa:
        if ch in IPA:
            return IPA[ch].copy()
    return _NEUTRAL.copy()


def viseme_weights(label: str) -> np.ndarray:
    """Viseme weights for a viseme name (ours or Oculus); raises ValueError when unknown."""
    s = label.strip()
    if s in OURS:
        return OURS[s].copy()
    if s in OCULUS:
        return OCULUS[s].copy()
    if s.lower() in OURS:
        return OURS[s.lower()].copy()
    raise ValueError(f"unknown viseme {label!r}; valid: {', '.join(VISEMES)}, silence, "
                     f"or an Oculus viseme ({', '.join(OCULUS)})")
