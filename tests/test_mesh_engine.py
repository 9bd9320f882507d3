"""The mesh engine on real photos: FACS-direction checks on re-detected landmarks,
identity at intensity 0, no-face and largest-face handling, no fold-overs, locality of
"full" renders, batching, eyelids, mouth interior and gaze.
"""
from __future__ import annotations

import threading
from dataclasses import replace

import cv2
import numpy as np
import pytest

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # tests/portraits.py

from avatar_testkit.portraits import PORTRAIT_NAMES, require_portrait
from engine.api import InvalidImageError, NoFaceError
from engine.facs import SEED_TABLE, activation, seed_columns
from engine.landmarks import detect_landmarks
from engine.mesh import MeshEngine, MeshSource
from engine.mesh import regions as R
from engine.mesh.canvas import backward_maps, coefficients
from engine.mesh.geometry import crop_photo, face_frame
from engine.motion import EMOTIONS, IdleState, Motion


def _astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def _grace() -> np.ndarray:
    from matplotlib.cbook import get_sample_data
    from PIL import Image

    with get_sample_data("grace_hopper.jpg") as f:
        return np.array(Image.open(f).convert("RGB"))


PHOTOS = {"astronaut": _astronaut, "grace": _grace}


@pytest.fixture(scope="module")
def engine() -> MeshEngine:
    return MeshEngine()


@pytest.fixture(scope="module", params=list(PHOTOS))
def photo(request, engine) -> tuple[str, np.ndarray, MeshSource]:
    img = PHOTOS[request.param]()
    return request.param, img, engine.prepare(img)


# ---- measurements on re-detected landmarks, in the face frame (units of inter-ocular distance)

def face_metrics(frame_img: np.ndarray, d: float | None = None) -> dict[str, float]:
    """Positions relative to the eyes (origin between them, axes along the eye line),
    in units of the inter-ocular distance ``d`` (the neutral frame's, so that a squint
    that moves the eye corners does not rescale every other measurement)."""
    pts = detect_landmarks(frame_img).points
    f = face_frame(pts)
    c = f.coords(pts[:, :2].astype(np.float64)) * (f.d / (d or f.d))  # (478, 2): x right, y down

    def y(i: int) -> float:
        return float(c[i, 1])

    return {
        "corners_y": (y(61) + y(291)) / 2,  # relative to the eye line
        "inner_brow_y": (y(R.BROW_INNER[0]) + y(R.BROW_INNER[1]) + y(107) + y(336)) / 4,
        "brow_y": float(np.mean([y(i) for i in (55, 65, 52, 53, 46, 285, 295, 282, 283, 276)])),
        "inner_brow_gap": float(abs(c[55, 0] - c[285, 0])),
        "lips_apart": y(14) - y(13),
        "eye_open": ((y(145) - y(159)) + (y(374) - y(386))) / 2,
        "upper_lip_y": y(0),
        "mouth_width": float(abs(c[291, 0] - c[61, 0])),
        "iris_x": float((c[468, 0] - (c[33, 0] + c[133, 0]) / 2 + c[473, 0] - (c[263, 0] + c[362, 0]) / 2) / 2),
        "roll_deg": float(np.degrees(np.arctan2(f.u[1], f.u[0]))),
        "d": f.d,
    }


@pytest.fixture(scope="module")
def neutral(engine, photo) -> tuple[np.ndarray, dict[str, float]]:
    frame = engine.render([(photo[2], Motion())])[0]
    return frame, face_metrics(frame)


def delta(engine, photo, neutral, motion: Motion) -> dict[str, float]:
    m = face_metrics(engine.render([(photo[2], motion)])[0], neutral[1]["d"])
    return {k: m[k] - neutral[1][k] for k in m}


# Thresholds in units of d. Measured detector noise on these renders (JPEG q80, 2 px shift,
# brightness, blur, rescale of the neutral frame) is at most 0.02, and at most 0.007 for the
# eye opening; thresholds are >= 0.03, and 0.02 for the eye opening (AU5 widens by 20% of
# an opening that is itself about 0.12 d).
FACS_EXPECTATIONS = {
    "happy": {"corners_y": -0.05},
    "sad": {"corners_y": +0.04, "inner_brow_y": -0.03},
    "surprised": {"brow_y": -0.04, "lips_apart": +0.15, "eye_open": +0.02},
    "angry": {"inner_brow_y": +0.03},
    "disgusted": {"upper_lip_y": -0.04, "corners_y": +0.03},
    "fearful": {"brow_y": -0.03, "mouth_width": +0.035, "eye_open": +0.02},
}
# Grace Hopper's glasses rim lies on her brows: FaceMesh barely follows her inner brows
# (a 0.13 d lift reads as 0.01 d), for every emotion (exempt since before issue 11). The brows'
# squeeze in anger, which FaceMesh does not track on either photo, is checked on the warp
# (test_brow_fields_follow_facs, on the astronaut).
# Her brows also lie under the top rims of her frames, which stay rigid (they rise as one
# straight piece, test_glasses_frames_stay_rigid): FaceMesh's brows follow the rims, which
# rise less than brows would. Her fear raises them further (canvas.RIMS_FEAR_BROWS: brow_y
# -0.052 d, checked), but her surprise reads -0.023 d, and raising it past -0.045 d read fearful.
# (photo, measure) -> the emotions whose check is skipped there (None: all of them).
OCCLUDED: dict[tuple[str, str], frozenset[str] | None] = {
    ("grace", "inner_brow_y"): None,
    ("grace", "brow_y"): frozenset({"surprised"}),
}


def occluded(photo: str, emotion: str, key: str) -> bool:
    if (photo, key) not in OCCLUDED:
        return False
    which = OCCLUDED[photo, key]
    return which is None or emotion in which


@pytest.mark.parametrize("emotion", list(FACS_EXPECTATIONS))
def test_emotion_moves_face_the_facs_way(engine, photo, neutral, emotion):
    d = delta(engine, photo, neutral, Motion.emotion(emotion, 1.0))
    for key, want in FACS_EXPECTATIONS[emotion].items():
        if occluded(photo[0], emotion, key):
            continue
        if want > 0:
            assert d[key] > want, f"{photo[0]} {emotion}: {key} moved {d[key]:+.3f}, want > {want:+.3f}"
        else:
            assert d[key] < want, f"{photo[0]} {emotion}: {key} moved {d[key]:+.3f}, want < {want:+.3f}"


def forward_at(src: MeshSource, motion: Motion, idx: int) -> np.ndarray:
    """The warp's forward displacement at one landmark, in the face frame, in units of d."""
    c = src.crop
    k = coefficients(activation(motion))
    f = np.tensordot(k.smooth, c.smooth, axes=1).astype(np.float32)
    x, y = c.points[idx, :2]
    at = np.array([[[(x + 0.5) / 8 - 0.5, (y + 0.5) / 8 - 0.5]]], np.float32)
    v = cv2.remap(f, at, None, cv2.INTER_LINEAR)[0, 0]
    return np.array([v @ c.frame.u, v @ c.frame.v]) / c.frame.d


def test_brow_fields_follow_facs(photo):
    src = photo[2]
    if photo[0] == "grace":
        pytest.skip("Grace's brows are under her glasses' rims: test_glasses_frames_stay_rigid")
    angry, sad = Motion.emotion("angry", 1.0), Motion.emotion("sad", 1.0)
    left, right = forward_at(src, angry, R.BROW_INNER[0]), forward_at(src, angry, R.BROW_INNER[1])
    assert left[1] > 0.08 and right[1] > 0.08  # inner brows down
    assert left[0] > 0.05 and right[0] < -0.05  # ... and towards each other
    for i in R.BROW_INNER_UPPER:
        assert forward_at(src, sad, i)[1] < -0.08  # the inner ends rise in sadness
        assert forward_at(src, Motion.emotion("surprised", 1.0), i)[1] < -0.1


GLASSES = {"grace_hopper": True, "glasses": True, "astronaut": False, "smile_teeth": False,
           "surprised": False, "smile_outdoor": False}


@pytest.mark.parametrize("name", list(GLASSES))
def test_glasses_are_found(engine, name):
    """Glasses (a frame's bridge across the nose) are found on the portraits that wear them,
    and on no other: a false find would stiffen someone's brows."""
    from avatar_testkit.portraits import PortraitUnavailableError, portrait_rgb

    from engine.mesh.rigid import rigid_weights

    try:
        img = portrait_rgb(name)
    except PortraitUnavailableError as e:
        pytest.skip(str(e))
    c = engine.prepare(img).crop
    assert (rigid_weights(c.image, c.points, c.frame, c.grid.nodes) is not None) == GLASSES[name]


@pytest.mark.parametrize("name", ["grace_hopper", "glasses"])
def test_glasses_frames_stay_rigid(engine, name):
    """Brows and wide eyes do not bend glasses frames: over the top rims (where the brow
    landmarks lie, under or just over the rim) the brow fields are one translation."""
    from avatar_testkit.portraits import PortraitUnavailableError, portrait_rgb

    try:
        src = engine.prepare(portrait_rgb(name))
    except PortraitUnavailableError as e:
        pytest.skip(str(e))
    from engine.mesh.rigid import rigid_weights

    c = src.crop
    rigid, top = rigid_weights(c.image, c.points, c.frame, c.grid.nodes)
    frame_top = (rigid > 0.9) & (top > 0.9)  # the top rims (and brows under them)
    frame_low = (rigid > 0.9) & (top < 0.1)  # lower rims, bridge, lens edges
    assert frame_top.sum() >= 5 and frame_low.sum() >= 5, (frame_top.sum(), frame_low.sum())
    for emotion in ("surprised", "fearful", "angry", "sad"):
        k = coefficients(activation(Motion.emotion(emotion, 1.0, baseline="photo")))
        f = np.tensordot(k.smooth[:-5], c.smooth[:-5], axes=1).reshape(-1, 2) / c.frame.d  # no head motion
        # Without the rigidity a raised brow's field differs by ~0.1 d along one rim (the bend
        # the seed showed); as one piece it is the same everywhere on it.
        # (Where the frame's weight is 0.9, a tenth of the free field, up to 0.02 d, remains.)
        assert np.ptp(f[frame_top], axis=0).max() < 0.035, (name, emotion, np.ptp(f[frame_top], axis=0))
        assert np.abs(f[frame_low]).max() < 0.02, (name, emotion, np.abs(f[frame_low]).max())
    # The forehead above still moves.
    assert forward_at(src, Motion.emotion("surprised", 1.0, baseline="photo"), R.FOREHEAD_MID)[1] < -0.05


def _moved(engine, src, motion: Motion, ref: np.ndarray) -> float:
    pts = detect_landmarks(engine.render([(src, motion)])[0]).points[:, :2]
    f = face_frame(ref)
    return float(np.linalg.norm(pts - ref, axis=1).mean() / f.d)


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "neutral"])
def test_half_intensity_moves_less(engine, photo, neutral, emotion):
    ref = detect_landmarks(neutral[0]).points[:, :2]
    half = _moved(engine, photo[2], Motion.emotion(emotion, 0.5), ref)
    full = _moved(engine, photo[2], Motion.emotion(emotion, 1.0), ref)
    assert full > 0.01, f"{emotion} at 1.0 barely moves the landmarks ({full:.3f})"
    assert half < 0.8 * full, f"{emotion}: 0.5 moved {half:.3f}, 1.0 moved {full:.3f}"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_intensity_zero_is_the_photo(engine, photo):
    """With baseline "photo" (emotions on top of the face as photographed) intensity 0 is the
    photo itself."""
    name, img, src = photo
    crop = crop_photo(img, src.crop_affine, 512)
    for e in EMOTIONS:
        jobs = [(src, Motion.emotion(e, 0.0, baseline="photo"))]
        assert psnr(engine.render(jobs, mode="full")[0], img) >= 40
        assert psnr(engine.render(jobs)[0], crop) >= 40
    # ... while intensity 1 really changes the picture.
    assert psnr(engine.render([(src, Motion.emotion("happy", 1.0, baseline="photo"))], mode="full")[0], img) < 40


def test_crop_frames_the_face(engine, photo):
    frame = engine.render([(photo[2], Motion())], size=256)[0]
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    x0, y0, x1, y1 = detect_landmarks(frame).box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    assert 0.3 * 256 < cx < 0.7 * 256 and 0.25 * 256 < cy < 0.65 * 256
    assert 0.25 < (x1 - x0) / 256 < 0.6  # a portrait: head and shoulders, not a close-up


def test_seed_table_reproduced():
    for e in EMOTIONS:
        assert seed_columns(e) == SEED_TABLE[e], e


def test_extras_stay_out_of_the_read_outs():
    """The per-emotion extras (what makes the faces read) never touch an AU the seed's
    read-outs use, so the table above holds whatever they add; every AU is a known one."""
    from engine.facs import ACTION_UNITS, PROTOTYPES, READOUT_AUS, emotion_action_units
    from engine.mesh.action_units import SMOOTH_AUS
    from engine.mesh.canvas import TEAR_GAINS

    for e, p in PROTOTYPES.items():
        assert not set(p.extra) & READOUT_AUS, e
        assert set(p.base) | set(p.extra) <= set(ACTION_UNITS), e
        full = emotion_action_units(e, 1.0)
        for au, v in p.extra.items():
            assert full[au] == pytest.approx(p.expression_scale * (p.base.get(au, 0.0) + v))
    # Every AU the emotions use moves something in the mesh engine (5, 7 and 43 via the lids).
    rendered = {int(k) for k in SMOOTH_AUS if k.isdigit()} | set(TEAR_GAINS) | {5, 7, 43}
    used = {au for p in PROTOTYPES.values() for au in (*p.base, *p.extra)}
    assert used <= rendered, used - rendered


def _landscape() -> np.ndarray:
    import skimage.data

    return skimage.data.rocket()


@pytest.mark.parametrize("make", [lambda: __import__("skimage.data").data.chelsea(), _landscape,
                                  lambda: np.full((200, 300, 3), 128, np.uint8)])
def test_no_face_raises(engine, make):
    with pytest.raises(NoFaceError):
        engine.prepare(make())


@pytest.mark.parametrize("bad", [np.zeros((10, 10, 3), np.uint8), np.zeros((64, 64), np.uint8),
                                 np.zeros((64, 64, 3), np.float32), "not an image"])
def test_invalid_images_raise(engine, bad):
    with pytest.raises(InvalidImageError):
        engine.prepare(bad)


def test_two_faces_takes_the_largest(engine):
    big, small = _grace(), cv2.resize(_astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    h = big.shape[0]
    canvas = np.full((h, big.shape[1] + 300, 3), 200, np.uint8)
    canvas[:, 300:] = big
    canvas[50:306, 20:276] = small
    src = engine.prepare(canvas)
    assert src.face_box[0] > 300  # Grace, on the right
    flipped = np.ascontiguousarray(canvas[:, ::-1])
    src2 = engine.prepare(flipped)
    assert src2.face_box[2] < flipped.shape[1] - 300


def _full_map(src: MeshSource, motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    """The crop canvas's whole backward map, and where the lips' seam is (the painted opening,
    and the blended seam where an open photo's lips are closed)."""
    c = src.crop
    x, y = np.meshgrid(np.arange(c.grid.width, dtype=np.float32), np.arange(c.grid.height, dtype=np.float32))
    full = np.dstack([x, y])
    alpha = np.zeros(full.shape[:2], np.float32)
    photo = src.expression if motion.baseline == "neutral" else None
    m = backward_maps(c, coefficients(activation(motion), photo))
    if m is not None:
        X0, Y0, X1, Y1 = m.box
        full[Y0:Y1, X0:X1] = m.maps
        if m.opening is not None:
            (x0, y0, x1, y1), op = m.opening[:2]
            seam = np.maximum(op.alpha, op.seam)
            alpha[Y0 + y0:Y0 + y1, X0 + x0:X0 + x1] = seam if op.blend is None else np.maximum(seam, op.blend)
    return full, alpha


EXTREMES = [Motion.emotion(e, 1.0) for e in EMOTIONS] + [
    Motion(emotions={"surprised": 1.0, "fearful": 1.0, "happy": 1.0}),
    Motion(emotions={"angry": 1.0, "disgusted": 1.0, "sad": 1.0}),
    Motion().with_controls(smile=1, mouth_open=1, eyes_open=1, brows=1, gaze_x=1, gaze_y=-1,
                           yaw=20, pitch=-20, roll=20),
    Motion().with_controls(smile=-1, eyes_open=-1, brows=-1, gaze_x=-1, gaze_y=1, yaw=-20, pitch=20,
                           roll=-20),
    replace(Motion.emotion("surprised", 1.0), idle=IdleState(blink=1.0, yaw=25, pitch=25, roll=25,
                                                             breath=1.0)),
]


def _det_off_seam(full: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The backward map's Jacobian determinant (source area per output pixel), and where it
    counts: everywhere but the lips' seam (the painted opening or blended seam, 2 px around it)."""
    dx_dx = np.gradient(full[..., 0], axis=1)
    dx_dy = np.gradient(full[..., 0], axis=0)
    dy_dx = np.gradient(full[..., 1], axis=1)
    dy_dy = np.gradient(full[..., 1], axis=0)
    det = dx_dx * dy_dy - dx_dy * dy_dx
    # The only seam allowed is where the lips part or meet: it is painted over.
    seam = cv2.dilate((alpha > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return det, ~seam


def _check_folds(label: str, full: np.ndarray, alpha: np.ndarray) -> None:
    det, off = _det_off_seam(full, alpha)
    bad = (det <= 0) & off
    assert not bad.any(), f"{label}: {bad.sum()} folded pixels, min det {det[off].min():.3f}"
    # No tearing (lid skin over a closed eye stretches up to ~11x).
    assert det[off].max() < 16, f"{label}: stretched {det[off].max():.1f}x"


@pytest.mark.parametrize("i", range(len(EXTREMES)))
def test_no_fold_overs(engine, photo, i):
    _check_folds(f"{photo[0]} motion {i}", *_full_map(photo[2], EXTREMES[i]))


@pytest.fixture(scope="module")
def portrait_sources(engine) -> dict[str, MeshSource]:
    """Every test portrait available here (avatar_testkit.portraits), prepared once."""
    from avatar_testkit.portraits import available_portraits, portrait_rgb

    return {name: engine.prepare(portrait_rgb(name)) for name in available_portraits()}


@pytest.mark.parametrize("emotion", EMOTIONS)
@pytest.mark.parametrize("name", PORTRAIT_NAMES)
def test_no_fold_overs_on_portraits(portrait_sources, name, emotion):
    """Every emotion on every portrait, the photo's own expression undone (closing an open
    mouth: where the closed lips meet the two sides' maps jump from one lip edge to the
    other, and that seam is blended, mouth.py's LIP_SEAM_W)."""
    if name not in portrait_sources:
        require_portrait(name)
    _check_folds(f"{name} {emotion}", *_full_map(portrait_sources[name], Motion.emotion(emotion, 1.0)))


# The FACS checks above on every test portrait (issue 11: "re-detected landmarks move the FACS
# way for every emotion, on every portrait"). Grace Hopper's brows stay OCCLUDED as above (her
# brows are "grace" there and "grace_hopper" here). A measured miss goes here as a strict xfail
# with its value, so that a fix shows; the last seven (smile_teeth's eye opening, the `surprised`
# portrait's brows, the `glasses` portrait's inner brows, lip stretch and raised upper lip) were
# closed on 2026-12-02 (docs/mesh_engine.md).
FACS_GAPS: dict[tuple[str, str, str], str] = {}


def _portrait_checks() -> list:
    """One case per (portrait, emotion, measure); the known gaps are strict xfails."""
    cases = []
    for name in PORTRAIT_NAMES:
        for emotion, wants in FACS_EXPECTATIONS.items():
            for key in wants:
                if name == "grace_hopper" and occluded("grace", emotion, key):
                    continue
                gap = FACS_GAPS.get((name, emotion, key))
                marks = [pytest.mark.xfail(strict=True, reason=f"issue 11: {gap}")] if gap else []
                cases.append(pytest.param(name, emotion, key, marks=marks, id=f"{name}-{emotion}-{key}"))
    return cases


@pytest.fixture(scope="module")
def portrait_metrics(engine, portrait_sources) -> dict[tuple[str, str], dict[str, float]]:
    """Re-detected face metrics per (portrait, emotion at 1.0), filled as the cases ask."""
    return {}


@pytest.mark.parametrize("name,emotion,key", _portrait_checks())
def test_emotion_moves_every_portrait_the_facs_way(engine, portrait_sources, portrait_metrics, name, emotion, key):
    if name not in portrait_sources:
        require_portrait(name)
    src = portrait_sources[name]
    for e, motion in (("neutral", Motion()), (emotion, Motion.emotion(emotion, 1.0))):
        if (name, e) not in portrait_metrics:
            d = portrait_metrics[name, "neutral"]["d"] if e != "neutral" else None
            portrait_metrics[name, e] = face_metrics(engine.render([(src, motion)])[0], d)
    moved = portrait_metrics[name, emotion][key] - portrait_metrics[name, "neutral"][key]
    want = FACS_EXPECTATIONS[emotion][key]
    assert (moved > want if want > 0 else moved < want), f"{name} {emotion}: {key} moved {moved:+.3f}, want {want:+.3f}"


def test_full_mode_keeps_far_pixels(engine):
    face = _grace()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (1400, 1500, 3), dtype=np.uint8)
    img[400:1000, 500:1012] = face
    src = engine.prepare(img)
    out = engine.render([(src, EXTREMES[-1]), (src, EXTREMES[-3])], mode="full")
    x0, y0, x1, y1 = src.face_box
    w = max(x1 - x0, y1 - y0)
    far = np.ones(img.shape[:2], bool)
    far[max(0, int(y0 - 1.1 * w)):int(y1 + 1.1 * w), max(0, int(x0 - 1.1 * w)):int(x1 + 1.1 * w)] = False
    for frame in out:
        assert frame.shape == img.shape
        assert np.array_equal(frame[far], img[far])
        assert not np.array_equal(frame, img)


def test_batched_equals_individual(engine, photo):
    src = photo[2]
    motions = [Motion.emotion(e, 0.8) for e in EMOTIONS] + [EXTREMES[-1]]
    batch = engine.render([(src, m) for m in motions])
    for m, frame in zip(motions, batch):
        assert np.array_equal(frame, engine.render([(src, m)])[0])


def test_concurrent_renders_match(engine, photo):
    src = photo[2]
    motions = [Motion.emotion(e, 1.0) for e in EMOTIONS]
    expected = engine.render([(src, m) for m in motions])
    results: dict[int, list[np.ndarray]] = {}

    def work(k: int) -> None:
        results[k] = engine.render([(src, m) for m in motions])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(3):
        assert all(np.array_equal(a, b) for a, b in zip(results[k], expected))


def test_closing_eyes_lowers_the_upper_lid(engine, photo, neutral):
    for motion in (Motion().with_controls(eyes_open=-1), replace(Motion(), idle=IdleState(blink=1.0))):
        frame = engine.render([(photo[2], motion)])[0]
        pts = detect_landmarks(frame).points
        ref = detect_landmarks(neutral[0]).points
        d = face_frame(ref).d
        for up, low in ((159, 145), (386, 374)):
            assert pts[up, 1] - ref[up, 1] > 0.03 * d  # the upper lid came down
            # FaceMesh never reads an eye as fully shut (less so behind glasses): 80% is plenty.
            assert (pts[low, 1] - pts[up, 1]) < 0.8 * (ref[low, 1] - ref[up, 1])


# FaceMesh's reading of Grace Hopper's shut eye behind her glasses depends on the framing,
# not on the render (0.42 to 0.83 of the open eye for the same lids at crop sizes 2.0-2.6x
# the face, and 0.68 at the photo's own framing): the detector check is made on the
# astronaut, and the lids are checked on the warp itself for both photos.
WINK_DETECTOR_UNRELIABLE = {"grace"}


def test_wink_closes_one_eye(engine, photo, neutral):
    motion = Motion().with_controls(eye_left=-1)
    c = photo[2].crop
    m = backward_maps(c, coefficients(activation(motion)))
    X0, Y0 = m.box[:2]
    # The portrait's left eye is the image-right one (side 1): over its iris the frame now
    # shows the skin above the upper lid; the right eye's iris shows itself.
    for side, closed in ((1, True), (0, False)):
        eye = c.eyes[side]
        x, y = (int(round(float(v))) for v in c.points[R.IRIS_CENTER[side], :2])
        q = m.maps[y - Y0, x - X0] if (X0 <= x < m.box[2] and Y0 <= y < m.box[3]) else np.array([x, y], float)
        rel = q - eye.centre
        t_up = float(np.interp(rel @ eye.u, eye.s_up, eye.t_up))
        if closed:
            assert rel @ eye.v < t_up, (photo[0], rel @ eye.v, t_up)
        else:
            assert np.abs(q - (x, y)).max() < 0.5, (photo[0], q, (x, y))
    if photo[0] in WINK_DETECTOR_UNRELIABLE:
        return
    d = delta(engine, photo, neutral, motion)
    frame = engine.render([(photo[2], motion)])[0]
    pts = detect_landmarks(frame).points
    left = pts[374, 1] - pts[386, 1]
    right = pts[145, 1] - pts[159, 1]
    assert left < 0.6 * right, (left, right, d["eye_open"])


def test_crop_stays_inside_the_photo(engine):
    """A face near the photo's edge: the crop slides to keep the portrait framing on real
    pixels (no replicated border columns), and pixels it must invent are not streaks."""
    img = _astronaut()
    w = img.shape[1]
    shifted = np.ascontiguousarray(img[:, 120:])  # the face now near the left edge
    src = engine.prepare(shifted)
    a = src.crop_affine
    s = a[0, 0]
    x0, y0 = -a[0, 2] / s, -a[1, 2] / s  # the crop's corners in photo pixels
    x1, y1 = x0 + 512 / s, y0 + 512 / s
    assert x0 >= -0.5 and y0 >= -0.5 and x1 <= shifted.shape[1] + 0.5 and y1 <= shifted.shape[0] + 0.5
    # Too small a photo for the framing: the crop tightens, then pads (blurred edge extension).
    small = np.ascontiguousarray(img[40:300, 150:370])
    src = engine.prepare(small)
    frame = engine.render([(src, Motion())])[0]
    assert frame.shape == (512, 512, 3)
    assert w == 512


def _tight_portrait() -> np.ndarray:
    """A 512x512 close head-and-shoulders shot cut from the astronaut: even at its tightest
    (1.7x the face) the crop runs past the photo's edges."""
    img = _astronaut()[50:220, 180:340]
    return cv2.resize(img, (512, 512), interpolation=cv2.INTER_CUBIC)


def test_no_mirror_beyond_the_photo(engine):
    """Pixels the crop invents beyond the photo's edge read as background: smooth, and no
    mirrored copy of the rows inside the photo (the seed's bow tie of a mirrored neck)."""
    img = _tight_portrait()
    src = engine.prepare(img)
    a = src.crop_affine
    s = a[0, 0]
    x_lo, y_lo = a[0, 2], a[1, 2]
    x_hi, y_hi = x_lo + s * img.shape[1], y_lo + s * img.shape[0]
    # The widest band beyond the photo, turned to the frame's bottom (np.rot90 k: left 1,
    # top 2, right 3), with the photo's edge at row ``edge``.
    bands = {0: 512 - y_hi, 1: x_lo, 2: y_lo, 3: 512 - x_hi}
    k = max(bands, key=bands.get)
    assert bands[k] > 24, f"the test photo must run past the crop ({bands})"
    frame = np.rot90(engine.render([(src, Motion())])[0], k).astype(np.float64)
    edge = int(np.floor(512 - bands[k]))
    band = min(24, 512 - edge - 2)
    out = frame[edge + 2:edge + 2 + band]  # rows beyond the photo, going outward
    mirror = frame[edge - 2 - np.arange(band)]  # rows inside, going inward: what a mirror shows
    # Each column's variation along the outward direction (its mean removed: an extension of
    # the edge row is that row, which the rows just inside resemble too).
    o, m = out.mean(axis=2), mirror.mean(axis=2)
    o, m = o - o.mean(axis=0), m - m.mean(axis=0)
    corr = float((o * m).sum() / np.sqrt((o * o).sum() * (m * m).sum() + 1e-9))
    # Mirrored rows repeat that variation exactly; a blurred extension has none of it.
    assert corr < 0.6, corr
    # Smoother: less fine detail across the band than inside the photo (it blurs outward).
    hf = lambda z: float(np.abs(np.diff(z.mean(axis=2), axis=1)).mean())  # noqa: E731
    assert hf(out[8:]) < 0.8 * hf(mirror), (hf(out[8:]), hf(mirror))  # a mirror: the same


def test_neutral_removes_the_photos_expression(engine, photo):
    """Absolute expressions: emotion=neutral undoes the photo's own smile and open mouth (the
    astronaut smiles with her teeth showing), and leaves a neutral face (Grace) nearly as is."""
    name, img, src = photo
    as_is = face_metrics(engine.render([(src, Motion(baseline="photo"))])[0])
    neutral = face_metrics(engine.render([(src, Motion())])[0], as_is["d"])
    lift = lambda m: -m["corners_y"]  # noqa: E731  (corners above the eye line are negative y)
    if name == "astronaut":
        assert src.expression.aus.get("12", 0) > 0.5 and src.expression.mouth_open
        assert lift(as_is) - lift(neutral) > 0.04, (lift(as_is), lift(neutral))  # the smile is gone
        assert as_is["lips_apart"] > 0.1 and neutral["lips_apart"] < 0.03, (as_is["lips_apart"],
                                                                            neutral["lips_apart"])
    else:
        assert abs(lift(as_is) - lift(neutral)) < 0.03 and neutral["lips_apart"] < 0.03


def test_closed_mouth_covers_the_teeth(engine):
    """The astronaut's open, toothy smile closes over her teeth: inside the photo's own
    inner-lip outline the neutral render shows lips (no bright teeth, no dark hole)."""
    img = _astronaut()
    src = engine.prepare(img)
    frame = engine.render([(src, Motion())])[0]
    pts = src.crop.points
    inner = np.concatenate([pts[list(R.LIP_UPPER_INNER), :2], pts[list(R.LIP_LOWER_INNER), :2][::-1]])
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0
    luma = lambda f: f.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # noqa: E731
    sat = lambda f: f.max(axis=2).astype(np.float32) - f.min(axis=2)  # noqa: E731
    outer = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(outer, [np.round(pts[list(R.LIP_LOWER_OUTER), :2]).astype(np.int32)], 1)
    lips = (outer > 0) & ~mask  # the photo's lower lip: the colour the closed mouth must show
    photo = src.crop.image
    lip_sat = float(sat(photo)[lips].mean())
    # Teeth are grey: the photo's opening is far less saturated than its lips; closed, the
    # same pixels show lip (measured 0.78x and 0.96x the lips' saturation).
    assert float(sat(photo)[mask].mean()) < 0.85 * lip_sat
    assert float(sat(frame)[mask].mean()) > 0.9 * lip_sat
    # No hole either: the lips' red, not a dark cavity.
    assert float(np.mean(luma(frame)[mask] < 60)) < 0.05
    # ... and baseline "photo" keeps the photo's own smile.
    kept = engine.render([(src, Motion(baseline="photo"))])[0]
    assert float(sat(kept)[mask].mean()) < 0.85 * lip_sat


def test_fields_vanish_at_the_crop_border(engine, photo):
    """A strong head roll moves the face but not the crop's border: the warp never samples
    beyond the canvas, where it could only smear the edge pixels."""
    c = photo[2].crop
    full, _ = _full_map(photo[2], Motion().with_controls(roll=20, yaw=20, pitch=20))
    x, y = np.meshgrid(np.arange(c.grid.width, dtype=np.float32), np.arange(c.grid.height, dtype=np.float32))
    disp = np.abs(full - np.dstack([x, y])).max(axis=2)
    border = np.ones_like(disp, bool)
    border[2:-2, 2:-2] = False
    assert disp[border].max() < 0.5, disp[border].max()
    assert disp.max() > 5.0  # ... while the head really turned
    assert full[..., 0].min() >= -0.5 and full[..., 1].min() >= -0.5
    assert full[..., 0].max() <= c.grid.width - 0.5 and full[..., 1].max() <= c.grid.height - 0.5


def test_parted_lips_show_a_dark_interior(engine, photo):
    src = photo[2]
    frame = engine.render([(src, Motion.emotion("surprised", 1.0))])[0]
    pts = detect_landmarks(frame).points[:, :2]
    inner = np.concatenate([pts[list(R.LIP_UPPER_INNER)], pts[list(R.LIP_LOWER_INNER)][::-1]])
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    luma = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lips = np.zeros_like(mask)
    cv2.fillPoly(lips, [np.round(pts[list(R.LIP_LOWER_OUTER)]).astype(np.int32)], 1)
    lips &= ~mask.astype(bool)
    assert mask.sum() > 100
    interior, skin = float(np.median(luma[mask > 0])), float(np.median(luma[lips > 0]))
    assert interior < 0.6 * skin, (interior, skin)


def test_gaze_moves_the_irises(engine, photo):
    # On the face as photographed: the iris detector's reading of the astronaut's eyes shifts
    # with the expression around them, which is not what this test is about.
    frame = engine.render([(photo[2], Motion(baseline="photo"))])[0]
    ref = (frame, face_metrics(frame))
    right = delta(engine, photo, ref, Motion(baseline="photo").with_controls(gaze_x=1.0))["iris_x"]
    left = delta(engine, photo, ref, Motion(baseline="photo").with_controls(gaze_x=-1.0))["iris_x"]
    # The iris detector's noise on these renders is below 0.005 d.
    assert right > 0.012 and left < -0.012, (right, left)


def test_head_roll_turns_the_eye_line(engine, photo, neutral):
    d = delta(engine, photo, neutral, Motion().with_controls(roll=10.0))
    assert 6.0 < d["roll_deg"] < 14.0, d["roll_deg"]


def test_render_rejects_bad_arguments(engine, photo):
    with pytest.raises(ValueError):
        engine.render([(photo[2], Motion())], mode="sideways")
    with pytest.raises(ValueError):
        engine.render([(photo[2], Motion())], size=0)
    assert engine.render([]) == []
    assert engine.info.name == "mesh" and engine.info.device == "cpu" and engine.info.output_size == 512
