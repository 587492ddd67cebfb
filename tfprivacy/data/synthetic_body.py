"""The built-in benchmark's "body" family: actions in the actors' limbs, private cues on them.

The "props" family (tfprivacy/data/synthetic.py) has a known answer: its action lives in a
sharp striped prop and every private cue is either colour or a 1-2 px mark, so greyscale plus
an 8x8 blur everywhere but the prop keeps the action and hides everything. Here no fixed
filter is the answer, because the action and the coarse private cues live on the same body:

Actions (`ACTIONS`), carried by the actor's own limb and body motion, no prop. Coarse ones
move the whole body or a whole limb by a good part of the actor's height: walk (the body
crosses the frame, legs scissor), jump (the body rises and falls), squat (the hips drop and
the knees spread), kick (one leg swings up); their cycle is 6-10 frames, 3-5 samples at the
evaluation's stride 2 (version 1's 4-6 frames aliased: a 4-frame cycle sampled every second
frame shows two poses only, equal ones at some phases). Two pairs differ only in fine hand
motion: wave (the raised hand's fingers sway sideways) vs raise_hand (the same raised arm
and hand, still), and clap (the hands held in front of the chest move apart and together)
vs rub_hands (the same hands slide up and down against each other). Each pair shares its
pose (and has no coarse motion), draws its random numbers alike and starts from the same
first frame.

The fine motion is made to be read at full resolution and lost to 4x area downsampling.
Every hand is a 4x4 px square (4k x 4k px at 64k px frames) snapped to the frame's 4 px grid
(camera shake does not move the grid), a check of 2 px blocks of skin -/+ an offset (the
face marks' offset: 0.7 of the skin's luminance distance to black or white, 37-80 grey
levels of luminance; zero mean). The fine actions shift a hand's check cyclically inside its
square by 1 px every second frame (so every sampled frame at stride 2), back and forth over
2 px (steps 0, 1, 2, 1: two cycles per 8-frame clip), along x (wave; clap, the two hands in
opposite directions) or y (rub_hands, opposite directions). Each step flips half the hand's
pixels by twice the offset (75-160 levels, in an oriented pattern of 1 px lines), while
every aligned 4x4 cell keeps its mean, the skin: after 4x or 8x area downsampling the two
members of a pair are the same video (up to rounding; measured under 1 grey level), and the
four fine actions keep only their static pose. The coarse actions move 8x8 cells by tens of
grey levels.

Private attributes, drawn independently of the action, with PA-HMDB51's prevalences
(`PREVALENCE`, the fraction of frames where the attribute is present): skin colour 0.972,
face 0.750, gender 0.980, nudity 0.597, relationship 0.157. Skin colour, gender and nudity
are per video; face follows a two-state chain per frame (the actor turns away and back)
whose stationary share of visible frames is 0.75; relationship is a second actor (60% of
videos) linked to the first (26% of those).

Cues that survive 8x downsampling (each spans several 8 px cells at 64 px frames):
- gender, on the acting body: build and hair. Male: shoulders twice the hips' width, short
  hair. Female: narrow shoulders, wide hips, long hair in two dark locks from the head to the
  chest. Unidentifiable (value 0): a straight robe-like build and a hood over the hair.
- nudity: the area of bare skin. Value 1 bares the arms from mid upper arm and the legs from
  mid thigh (short sleeves, shorts), value 2 the torso as well (but for a chest band on a
  female build); clothing has a random luminance, so a bare torso (the head's luminance) is
  told from a shirt in greyscale too.
- skin colour: the hue of those skin areas, the head and the hands (the hands' check has the
  skin's mean); value 0 ("unidentifiable") is a full-body costume in a non-skin hue at a skin
  tone's luminance (greyscale removes it).
Fine cues (1-2 px, their mean equal to their surroundings, erased by area downsampling): the
face's eyes and mouth, and the relationship's cord between the two actors' hands.

So greyscale plus downsampling hides skin colour and most of face and relationship but
leaves gender and nudity, which only a coarser blur removes; a blur that removes the body's
shape removes the coarse actions too, and 4x already removes the fine actions. Hiding gender
and nudity keeps the action only by changing the body's build and skin while keeping the
hands' fine texture: a learned filter can, a fixed filter bank cannot.

Version 1 moved the hands themselves by frame_size / 32 px, at 4-6 frame periods: its
recogniser (diff3d, 8-frame clips at stride 2) reached 67% top-1 on raw frames and down4 kept
98% of that, so the fine pairs were neither read on raw frames nor lost to 4x.

Formats, splits and labels are those of the props family: `tfprivacy.data.synthetic` picks
this module for SyntheticConfig.family == "body" and writes its output unchanged.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tfprivacy import config as C
from tfprivacy.data import synthetic as S
from tfprivacy.data.records import PRIVACY_ATTRIBUTES, DataError

ACTIONS: tuple[str, ...] = (
    "walk",
    "jump",
    "squat",
    "kick",
    # Pairs with the same pose, told apart only by fine hand motion inside 4 px cells (the
    # hands' check): the first of each pair moves its fingers, the second holds them still
    # (wave / raise_hand) or moves them the other way (clap: apart and together along x,
    # rub_hands: past each other along y).
    "wave",
    "raise_hand",
    "clap",
    "rub_hands",
)
# Bumped whenever this family's rendered content changes (its cache folder's name).
VERSION = 2

# Fraction of frames where each attribute is present in PA-HMDB51, matched by the sampling.
PREVALENCE = {
    "skin_color": 0.972,
    "face": 0.750,
    "gender": 0.980,
    "nudity": 0.597,
    "relationship": 0.157,
}
_P_NUDITY = (1.0 - PREVALENCE["nudity"], 0.35, PREVALENCE["nudity"] - 0.35)  # values 0, 1, 2
_P_FACE_COMPLETE = 0.6  # complete (2) rather than partial (1) when the face shows
# Per frame, a visible face turns away with this chance and an invisible one back with
# _FACE_SWITCH * 0.75 / 0.25, so the chain's stationary share of visible frames is 0.75.
_FACE_SWITCH = 0.04
_P_SECOND = 0.6
_P_LINK_GIVEN_SECOND = PREVALENCE["relationship"] / _P_SECOND

# Body geometry in fractions of the actor's height h (feet to the top of the head, standing).
_THIGH, _SHIN = 0.23, 0.22
_UPPER_ARM, _FOREARM = 0.17, 0.15
_HEAD_R = 0.115
_SHOULDER_Y = 0.30  # shoulder line above the hip joints
_CROTCH = 0.04  # torso's bottom below the hip joints
_BRIEFS = 0.06  # top of the pants' band above the hip joints
# (shoulder, hip) half-widths per gender look: 0 unidentifiable (straight), 1 male, 2 female.
_BUILD = {0: (0.145, 0.145), 1: (0.19, 0.095), 2: (0.115, 0.165)}
# Limb angles (radians; 0 points down, positive towards +x) of the relaxed pose, per side.
_ARM_REST = (0.22, 0.12)  # upper arm, forearm; mirrored for the left side
_LEG_REST = (0.07, 0.05)  # thigh, shin
_ARM_RAISED = (2.45, 2.85)
_SHOES = np.array([35, 30, 30], np.float32)
# Hands: squares of _HAND_CELL px cells (one cell at 64 px frames), snapped to the frame's
# _HAND_CELL px grid, each cell a check of 2 px blocks of skin -/+ a luminance offset (zero
# mean: 4x or 8x area downsampling sees the skin). The fine motion shifts a hand's check
# inside its cells (cyclically, by _FINGER_SWING's 1 px steps, one step every _FINGER_FRAMES
# frames: every sampled frame at the evaluation's stride 2), so it moves half the hand's
# pixels by twice the offset while every aligned 4x4 cell keeps its mean.
_HAND_CELL = 4
_FINGER_FRAMES = 2
_FINGER_SWING = (0, 1, 2, 1)


# ----------------------------------------------------------------------------- appearance


@dataclasses.dataclass
class _Appearance:
    skin_value: int  # 0 costume colour, 1..3 skin tone
    skin: np.ndarray
    nudity: int  # 0 covered, 1 short sleeves and shorts, 2 bare torso too
    gender: int  # look: 0 unidentifiable (robe, hood), 1 male, 2 female
    top: np.ndarray
    pants: np.ndarray
    hair: np.ndarray
    face: list[int]  # per frame: 0 invisible, 1 partial, 2 complete
    face_side: float  # the eye shown when partial
    second: dict | None  # second actor: {"skin_value", "skin", "gender", ..., "linked"}


def _clothing(rng) -> np.ndarray:
    """A non-skin hue at a random luminance (independent of the skin's)."""
    return S._colour_at_luma(rng, rng.uniform(45.0, 210.0))


def _face_track(rng, num_frames: int) -> list[int]:
    kind = 2 if rng.random() < _P_FACE_COMPLETE else 1
    p = PREVALENCE["face"]
    to_visible = _FACE_SWITCH * p / (1.0 - p)
    switches = rng.random(num_frames)
    visible = bool(rng.random() < p)
    out = []
    for f in range(num_frames):
        if f and switches[f] < (_FACE_SWITCH if visible else to_visible):
            visible = not visible
        out.append(kind if visible else 0)
    return out


def _sample_appearance(rng, num_frames: int, still: bool = False) -> _Appearance:
    skin_value, skin = S._sample_skin(rng, rng.random() < PREVALENCE["skin_color"])
    if still:  # VISPR only labels semi-nudity: 0 or 2, as the props family's stills
        nudity = 2 if rng.random() < PREVALENCE["nudity"] else 0
    else:
        nudity = int(rng.choice(3, p=_P_NUDITY))
    gender = 1 + int(rng.integers(2)) if rng.random() < PREVALENCE["gender"] else 0
    face = _face_track(rng, num_frames)
    face_side = float(rng.choice([-1.0, 1.0]))
    second = None
    if rng.random() < _P_SECOND:
        value2, skin2 = S._sample_skin(rng, skin_value != 0)
        second = {
            "skin_value": value2,
            "skin": skin2,
            "gender": 1 + int(rng.integers(2)) if gender else 0,
            "top": _clothing(rng),
            "pants": _clothing(rng),
            "hair": S._HAIR[rng.integers(len(S._HAIR))],
            "linked": bool(rng.random() < _P_LINK_GIVEN_SECOND),
            "side": float(rng.choice([-1.0, 1.0])),
            "scale": float(rng.uniform(0.6, 0.8)),
            "dist": float(rng.uniform(0.2, 0.3)),
        }
    return _Appearance(
        skin_value=skin_value,
        skin=skin,
        nudity=nudity,
        gender=gender,
        top=_clothing(rng),
        pants=_clothing(rng),
        hair=S._HAIR[rng.integers(len(S._HAIR))],
        face=face,
        face_side=face_side,
        second=second,
    )


def _frame_values(app: _Appearance, frame: int) -> dict:
    """Per-frame PA-HMDB51 values; skin a list where two actors show different tones, gender
    3 (both) where they show different genders."""
    skin, gender = app.skin_value, app.gender
    second = app.second
    if second is not None and skin and second["skin_value"] != skin:
        skin = sorted([skin, second["skin_value"]])
    if second is not None and gender and second["gender"] != gender:
        gender = 3
    return {
        "skin_color": skin,
        "face": app.face[frame],
        "gender": gender,
        "nudity": app.nudity,
        "relationship": int(second is not None and second["linked"]),
    }


# ----------------------------------------------------------------------------- motion


def _rest_pose() -> dict:
    arms = np.array([[-_ARM_REST[0], -_ARM_REST[1]], [_ARM_REST[0], _ARM_REST[1]]], np.float32)
    legs = np.array([[-_LEG_REST[0], -_LEG_REST[1]], [_LEG_REST[0], _LEG_REST[1]]], np.float32)
    fingers = np.zeros((2, 2), np.int64)
    return {"arms": arms, "legs": legs, "fold": False, "lift": 0.0, "fingers": fingers}


def _finger_shift(frame: int, start: int) -> int:
    """The fine motion's shift (px) of a hand's check in `frame`: 0 in frame 0, then one step
    of _FINGER_SWING every _FINGER_FRAMES frames, 1 px each (see _FINGER_SWING)."""
    step = frame // _FINGER_FRAMES
    n = len(_FINGER_SWING)
    return _FINGER_SWING[(step + start) % n] - _FINGER_SWING[start % n]


def _motion(rng, action: str, num_frames: int, size: int) -> list[dict]:
    """Per-frame poses for `action`: x, ground, lift (px), arms and legs (2 x [upper, lower]
    angles, left then right), fold (hands held in front of the chest), hand offsets (px, a
    static placement) and fingers (int px, 2 hands x (dx, dy): the shift of each hand's check,
    the fine motion).

    Every action draws the same random numbers in the same order, so one rng gives the same
    actor, placement and phases whatever the action: the two actions of a fine pair then
    differ only by their fingers' shifts, and their first frames are equal.
    """
    if action not in ACTIONS:
        raise DataError(f"unknown action {action!r}; expected one of {ACTIONS}")
    h = rng.uniform(0.6, 0.72) * size
    ground = rng.uniform(0.88, 0.95) * size
    # 3-5 samples per cycle at the evaluation's stride 2: no aliasing of the coarse motion
    # (a 4-frame period sampled every 2 frames could show a squat as a still pose).
    period = rng.uniform(6.0, 10.0)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    side = int(rng.integers(2))  # the waving arm, the kicking leg
    amp = rng.uniform(0.8, 1.0)  # scale of the coarse motion
    speed = rng.uniform(0.5, 1.1) * size / 64.0 * rng.choice([-1.0, 1.0])
    idle = rng.uniform(-0.1, 0.1, size=(2, 2)).astype(np.float32)
    hand_place = size / 32.0 * np.sin(rng.uniform(0.0, 2.0 * np.pi, size=(2, 2)))
    finger_start = int(rng.integers(len(_FINGER_SWING)))
    place = rng.random()

    t = np.arange(num_frames, dtype=np.float32)
    speed = speed if action == "walk" else 0.0
    travel = speed * (num_frames - 1)
    lo, hi = 0.2 * size - min(travel, 0.0), 0.8 * size - max(travel, 0.0)
    x0 = lo + place * (hi - lo) if hi > lo else (lo + hi) / 2
    sign = np.array([-1.0, 1.0], np.float32)
    poses = []
    for f in range(num_frames):
        pose = _rest_pose()
        pose["arms"] += idle * sign[:, None]
        pose["x"], pose["ground"] = float(x0 + speed * t[f]), ground
        theta = 2.0 * np.pi * t[f] / period + phase
        shift = _finger_shift(f, finger_start)
        if action == "walk":
            swing = amp * 0.35 * np.sin(theta / 1.6)
            pose["legs"] += np.float32(swing) * np.array([[1.0, 1.3], [-1.0, -1.3]], np.float32)
            pose["arms"][:, 0] -= np.float32(0.8 * swing) * np.array([1.0, -1.0], np.float32)
        elif action == "jump":
            q = amp * abs(math.sin(theta / 2.0))
            pose["lift"] = 0.12 * size * q
            pose["legs"] += np.float32(q) * sign[:, None] * np.array([0.4, -0.3], np.float32)
            pose["arms"][:, 0] += np.float32(1.2 * q) * sign
        elif action == "squat":
            q = amp * 0.5 * (1.0 - math.cos(theta))
            pose["legs"] += np.float32(q) * sign[:, None] * np.array([1.0, -0.35], np.float32)
            pose["arms"] += np.float32(q) * sign[:, None] * np.array([1.1, 1.3], np.float32)
        elif action == "kick":
            q = amp * max(0.0, math.sin(theta))
            pose["legs"][side] += np.float32(q) * sign[side] * np.array([1.3, 1.5], np.float32)
            pose["arms"][:, 0] += np.float32(0.4) * sign
        elif action in ("wave", "raise_hand"):
            pose["arms"][side] = sign[side] * np.array(_ARM_RAISED, np.float32)
            pose["arms"][side] += idle[side] * sign[side]
            if action == "wave":  # the raised hand's fingers sway sideways
                pose["fingers"][side, 0] = shift
        elif action in ("clap", "rub_hands"):
            pose["fold"] = True
            # Hands' checks move in opposition: apart and together (x), or past each other (y).
            axis = 0 if action == "clap" else 1
            pose["fingers"][:, axis] = np.array([-shift, shift])
        pose["hands"] = hand_place
        pose["h"] = h
        poses.append(pose)
    return poses


# ----------------------------------------------------------------------------- drawing


def _trapezoid(cv: S._Canvas, x, y0, y1, half0, half1) -> S._Mask:
    """Pixels with y in [y0, y1) within the half-width that goes linearly from half0 (y0) to
    half1 (y1) of x."""
    half = max(half0, half1)
    win = cv._window(x - half, y0, x + half, y1)
    px, py = cv.x[win], cv.y[win]
    t = np.clip((py - y0) / max(y1 - y0, 1e-6), 0.0, 1.0)
    inside = (py >= y0) & (py < y1) & (np.abs(px - x) <= half0 + t * (half1 - half0))
    return S._Mask(cv, win, inside)


def _limb(p0, angle: float, length: float) -> tuple[float, float]:
    return (p0[0] + length * math.sin(angle), p0[1] + length * math.cos(angle))


def _skeleton(pose: dict, gender: int) -> dict:
    """Joint positions (px) of an actor in `pose` with gender look `gender`'s build."""
    h, x = pose["h"], pose["x"]
    shoulder_half, hip_half = (w * h for w in _BUILD[gender])
    legs, arms = pose["legs"], pose["arms"]
    drop = max(_THIGH * h * math.cos(a) + _SHIN * h * math.cos(b) for a, b in legs)
    pelvis_y = pose["ground"] - pose["lift"] - drop
    y_top = pelvis_y - _SHOULDER_Y * h
    out = {"pelvis_y": pelvis_y, "y_top": y_top, "shoulder_half": shoulder_half}
    out["hip_half"] = hip_half
    out["legs"], out["arms"] = [], []
    for i, side in enumerate((-1.0, 1.0)):
        hip = (x + side * 0.55 * hip_half, pelvis_y)
        knee = _limb(hip, float(legs[i, 0]), _THIGH * h)
        out["legs"].append((hip, knee, _limb(knee, float(legs[i, 1]), _SHIN * h)))
        shoulder = (x + side * (shoulder_half - 0.035 * h), y_top + 0.025 * h)
        elbow = _limb(shoulder, float(arms[i, 0]), _UPPER_ARM * h)
        if pose["fold"]:  # hands together in front of the chest
            hand = (x + side * 0.05 * h, y_top + 0.15 * h)
        else:
            hand = _limb(elbow, float(arms[i, 1]), _FOREARM * h)
        hand = (hand[0] + pose["hands"][i][0], hand[1] + pose["hands"][i][1])
        out["arms"].append((shoulder, elbow, hand))
    return out


def _draw_body(cv: S._Canvas, size: int, pose: dict, look: dict) -> list[tuple[float, float]]:
    """Draws one actor (pose from `_motion`; look: colours, nudity, gender look, face);
    returns its hand positions (left, right)."""
    h, x = pose["h"], pose["x"]
    skin, nudity, gender = look["skin"], look["nudity"], look["gender"]
    top = skin if nudity == 2 else look["top"]
    pants = look["pants"]
    body = _skeleton(pose, gender)
    pelvis_y, y_top = body["pelvis_y"], body["y_top"]

    # Legs: pants, or shorts over the thighs' upper part with bare legs below (nudity >= 1).
    for hip, knee, foot in body["legs"]:
        hem = (hip[0] + 0.6 * (knee[0] - hip[0]), hip[1] + 0.6 * (knee[1] - hip[1]))
        cv.paint(cv.segment(knee, foot, max(1.0, 0.08 * h)), pants if nudity == 0 else skin)
        cv.paint(cv.segment(hem, knee, max(1.0, 0.095 * h)), pants if nudity == 0 else skin)
        cv.paint(cv.segment(hip, hem, max(1.0, 0.095 * h)), pants)
        cv.paint(cv.disc(foot[0], foot[1], max(0.7, 0.04 * h)), _SHOES)

    # Torso: a trapezoid from the shoulders' width to the hips'; pants' band at its bottom.
    y_bot = pelvis_y + _CROTCH * h
    torso = _trapezoid(cv, x, y_top, y_bot, body["shoulder_half"], body["hip_half"])
    cv.paint(torso, top)
    cv.paint(torso & (torso.y >= pelvis_y - _BRIEFS * h), pants)
    if nudity == 2 and gender == 2:
        cv.paint(torso & (torso.y >= y_top + 0.03 * h) & (torso.y < y_top + 0.1 * h), pants)

    # Head: neck, then the hair behind it (female locks) or a hood (unidentifiable), the head,
    # its hair cap (hood) and the face marks.
    head_r = _HEAD_R * h
    head_y = y_top - 0.03 * h - head_r
    cv.paint(cv.rect(x - 0.035 * h, head_y, x + 0.035 * h, y_top + 0.01 * h), skin)
    if gender == 2:
        for side in (-1.0, 1.0):
            x0, x1 = sorted((x + side * 0.55 * head_r, x + side * 1.35 * head_r))
            cv.paint(cv.rect(x0, head_y - 0.2 * head_r, x1, pelvis_y - 0.17 * h), look["hair"])
    elif gender == 0:
        cv.paint(cv.disc(x, head_y, 1.3 * head_r), look["top"])
    head = cv.disc(x, head_y, head_r)
    cv.paint(head, skin)
    cv.paint(head & (head.y < head_y - 0.45 * head_r), look["top"] if gender == 0 else look["hair"])
    S._draw_face(cv, size, x, head_y, head_r, skin, look["face"], look["face_side"])

    # Arms: sleeves (nudity 0), short sleeves (1) or bare (2); then the hands, always bare.
    for shoulder, elbow, hand in body["arms"]:
        hem = ((shoulder[0] + elbow[0]) / 2, (shoulder[1] + elbow[1]) / 2)
        sleeve = look["top"] if nudity < 2 else skin
        cv.paint(cv.segment(shoulder, hem, max(1.0, 0.075 * h)), sleeve)
        cv.paint(cv.segment(hem, elbow, max(1.0, 0.075 * h)), sleeve if nudity == 0 else skin)
        cv.paint(cv.segment(elbow, hand, max(1.0, 0.065 * h)), look["top"] if not nudity else skin)
    hands = [hand for _, _, hand in body["arms"]]
    cells = _hand_cells(cv, hands)
    offset = S._face_mark_offset(skin)
    for i, (cx, cy, n) in enumerate(cells):
        _draw_hand(cv, cx, cy, n, skin, offset, pose["fingers"][i])
    return hands


def _hand_cells(cv: S._Canvas, hands) -> list[tuple[int, int, int]]:
    """Per hand, the (x0, y0, side) in image pixels of its square, snapped to the
    _HAND_CELL grid of the frame (not the scene: camera shake does not move the grid); two
    squares that would overlap are put side by side (left hand left)."""
    n = _HAND_CELL * max(1, round(cv.size / 64))
    cells = []
    for hx, hy in hands:
        u, v = hx - cv.ox, hy - cv.oy  # image coordinates (pixel i spans [i, i + 1))
        cells.append([_HAND_CELL * round((w - n / 2) / _HAND_CELL) for w in (u, v)])
    (x0, y0), (x1, y1) = cells
    if abs(x0 - x1) < n and abs(y0 - y1) < n:
        mid = _HAND_CELL * round((x0 + x1 + n) / 2 / _HAND_CELL)
        y = _HAND_CELL * round((y0 + y1) / 2 / _HAND_CELL)
        cells = [[mid - n, y], [mid, y]]
    return [(int(x), int(y), n) for x, y in cells]


def _draw_hand(cv: S._Canvas, x0: int, y0: int, n: int, skin, offset, shift) -> None:
    """A hand: the n x n square at image pixel (x0, y0), a check of 2 px blocks of skin -
    offset and skin + offset shifted by `shift` (dx, dy) px inside every _HAND_CELL cell."""
    rows = slice(min(max(y0, 0), cv.size), min(max(y0 + n, 0), cv.size))
    cols = slice(min(max(x0, 0), cv.size), min(max(x0 + n, 0), cv.size))
    iy, ix = np.mgrid[rows, cols]
    half = _HAND_CELL // 2
    dark = ((ix + int(shift[0])) % _HAND_CELL < half) != ((iy + int(shift[1])) % _HAND_CELL < half)
    cv.paint(S._Mask(cv, (rows, cols), dark), skin - offset)
    cv.paint(S._Mask(cv, (rows, cols), ~dark), skin + offset)


def render_video(
    rng: np.random.Generator, cfg: C.SyntheticConfig, action: int, *, still: bool = False
) -> tuple[np.ndarray, dict]:
    """Renders one clip of action index `action` (into `ACTIONS`); the contract of
    `tfprivacy.data.synthetic.render_video`: uint8 frames [F, S, S, 3] and the clip's
    PA-HMDB51 annotation {attribute: [[start, end, value], ...]} (inclusive frame intervals).
    """
    if not 0 <= action < len(ACTIONS):
        raise DataError(f"action index {action} out of range [0, {len(ACTIONS)})")
    size, num_frames = cfg.frame_size, cfg.frames_per_video
    app = _sample_appearance(rng, num_frames, still=still)
    poses = _motion(rng, ACTIONS[action], num_frames, size)
    jit = max(1, int(round(size / 64)))
    background = S._background(rng, size + 2 * jit)
    noise_sigma = rng.uniform(3.0, 6.0)
    second = app.second
    if second is not None:
        # Beside the main actor's whole path, on the other side when that leaves the frame.
        xs = [p["x"] for p in poses]
        side2 = second["side"]
        for _ in range(2):
            edge = max(xs) if side2 > 0 else min(xs)
            x2 = float(edge + side2 * second["dist"] * size)
            if 0.08 * size <= x2 <= 0.92 * size:
                break
            side2 = -side2
        pose2 = _rest_pose()
        pose2.update(
            x=float(np.clip(x2, 0.08 * size, 0.92 * size)),
            ground=min(poses[0]["ground"] + rng.uniform(-0.03, 0.02) * size, 0.97 * size),
            h=second["scale"] * poses[0]["h"],
            hands=size / 40.0 * np.sin(rng.uniform(0, 2 * np.pi, size=(2, 2))),
        )
        look2 = {**second, "nudity": 0, "face": 0, "face_side": 1.0}
    offsets = S._camera_offsets(rng, num_frames, jit)
    look = {
        "skin": app.skin,
        "nudity": app.nudity,
        "gender": app.gender,
        "top": app.top,
        "pants": app.pants,
        "hair": app.hair,
        "face_side": app.face_side,
    }
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for f in range(num_frames):
        ox, oy = offsets[f]
        image = background[jit + oy : jit + oy + size, jit + ox : jit + ox + size].copy()
        cv = S._Canvas(image, -float(ox), -float(oy))
        look["face"] = app.face[f]
        if second is None:
            _draw_body(cv, size, poses[f], look)
        else:
            hands2 = _draw_body(cv, size, pose2, look2)
            if second["linked"]:
                # Drawn first: the main actor's hand (the one nearest the second) covers it.
                hands = [arm[2] for arm in _skeleton(poses[f], app.gender)["arms"]]
                near = 1 if side2 > 0 else 0
                S._draw_link(cv, hands[near], hands2[1 - near])
            _draw_body(cv, size, poses[f], look)
        image += rng.normal(0.0, noise_sigma, size=image.shape).astype(np.float32)
        frames[f] = np.clip(np.round(image), 0, 255).astype(np.uint8)
    values = [_frame_values(app, f) for f in range(num_frames)]
    return frames, {a: S._intervals([v[a] for v in values]) for a in PRIVACY_ATTRIBUTES}
