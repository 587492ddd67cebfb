"""The built-in privacy video benchmark: stick-figure videos written in real dataset formats.

Actions are carried by motion only (every class has the same single-frame pose distribution);
private attributes by appearance, independently of the action. Some attributes are coarse
(skin colour, nudity: large skin areas) and some fine (face features, gender texture,
relationship link: 1-3 px marks whose mean colour equals their surroundings), so area
downsampling removes the fine ones and greyscale removes skin colour. Half the action classes
come in pairs that share their coarse motion and differ only in fine motion: the actor holds a
striped prop (period ~4 px) whose stripes slide ("fingers moving") in one class of the pair and
stay still in the other. Its 4x4 block means are constant, so x4 area downsampling or a blur of
sigma >= 2 px erases the difference, while x2 and greyscale keep it: no hand-made filter wins
both utility and privacy. Geometry is defined in fractions of the frame size.

This is the "props" family (SyntheticConfig.family, the default). The "body" family
(tfprivacy/data/synthetic_body.py) carries actions by the actors' own limbs and puts coarse
private cues on the acting body; `render_video`, `generate` and the rest dispatch to it and
write the same formats.

Output (read by the real-format loaders):
  <root>/videos/<action>/<video>.avi, <root>/annotations/<action>.json (PA-HMDB51 format),
  <root>/splits/<action>_test_split1.txt (HMDB51 format), <root>/meta.json (written last).
The cross-dataset variant writes UCF101-style action-only videos under <root>/ucf and
VISPR-style still images with JSON labels under <root>/vispr.
"""

from __future__ import annotations

import colorsys
import dataclasses
import fcntl
import json
import math
import os
import shutil
import sys

import numpy as np
from absl import flags

from tfprivacy import config as C
from tfprivacy import runtime
from tfprivacy.data import video_io
from tfprivacy.data.records import (
    NUM_ATTRIBUTES,
    PRIVACY_ATTRIBUTES,
    DataError,
    VideoRecord,
    VideoSplit,
)
from tfprivacy.data.vispr import VISPR_ATTRIBUTES
from tfprivacy.progress import progress_iter

ACTIONS: tuple[str, ...] = (
    "walk_right",
    "walk_left",
    "run_right",
    "jump",
    # Pairs with the same coarse motion, told apart only by the prop's fine motion: the
    # second of each pair slides the prop's stripes (fingers moving), the first does not.
    "wave",
    "beckon",
    "clap",
    "rub_hands",
)
_FINGERS_MOVING = ("beckon", "rub_hands")
# Bumped whenever the rendered content changes: part of benchmark_root's folder name, so a
# cache written by older generator code is never reused.
VERSION = 3
META_FILE = "meta.json"

# Skin tones (PA-HMDB51 skin_color 1 white, 2 brown/yellow, 3 black); luminances ~193/149/81.
_SKIN_TONES = np.array([[224, 184, 153], [190, 140, 90], [110, 72, 48]], np.float32)
_HAIR = np.array([[30, 22, 18], [70, 45, 25], [150, 110, 60], [20, 20, 20]], np.float32)
_HEAD = 0.15  # head radius as a fraction of the actor height (a large skin area)
_LINK_DARK = np.array([25, 25, 25], np.float32)
_LINK_LIGHT = np.array([230, 230, 230], np.float32)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Face marks' luminance contrast, as a fraction of the skin's distance to black or white.
_MARK_CONTRAST = 0.7
# Non-skin hues (degrees) for clothing and "unidentifiable" costume skin: skips orange/brown.
_NON_SKIN_HUES = ((70.0, 330.0),)

# Prevalences, chosen so every attribute is present in ~50% of frames.
_P_SKIN_VISIBLE = 0.5
_P_FACE = (0.5, 0.2, 0.3)  # invisible, partial, complete
_P_FACE_TURN = 0.35  # the actor turns (face value changes) for a frame range
_P_GENDER = (0.5, 0.25, 0.25)  # plain, stripes (1), checkerboard (2)
_P_NUDITY = (0.5, 0.25, 0.25)
# Most videos show a second actor, so its presence (a coarse cue that survives downsampling)
# says little; only the thin link between the two marks a relationship (~50% of videos).
_P_SECOND_ACTOR = 0.9
_P_LINK_GIVEN_SECOND = 0.55
_P_JITTER = 0.2  # per frame, chance that the camera shake re-draws its offset (-1, 0, +1 px)


# ----------------------------------------------------------------------------- drawing


class _Mask:
    """A boolean mask over a window of the canvas (drawing touches only the window)."""

    def __init__(self, canvas: _Canvas, window: tuple[slice, slice], mask: np.ndarray):
        self.window = window
        self.mask = mask
        self.x = canvas.x[window]
        self.y = canvas.y[window]

    def __and__(self, cond: np.ndarray) -> _Mask:
        out = _Mask.__new__(_Mask)
        out.window, out.mask, out.x, out.y = self.window, self.mask & cond, self.x, self.y
        return out


class _Canvas:
    """One float32 RGB frame; pixel-centre coordinates shifted by (ox, ox) (camera jitter)."""

    def __init__(self, image: np.ndarray, ox: float, oy: float):
        self.image = image
        self.size = image.shape[0]
        self.ox, self.oy = ox, oy
        ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float32)
        self.x = xs + 0.5 + ox
        self.y = ys + 0.5 + oy

    def paint(self, mask: _Mask, color) -> None:
        self.image[mask.window][mask.mask] = color

    def _window(self, x0, y0, x1, y1) -> tuple[slice, slice]:
        # Pixels whose centres can lie in [x0, x1] x [y0, y1], clipped to the frame.
        def span(a, b, o):
            lo = min(max(math.floor(a - 0.5 - o), 0), self.size)
            hi = min(max(math.ceil(b - 0.5 - o) + 1, 0), self.size)
            return slice(lo, max(lo, hi))

        return span(y0, y1, self.oy), span(x0, x1, self.ox)

    def disc(self, cx, cy, r) -> _Mask:
        win = self._window(cx - r, cy - r, cx + r, cy + r)
        x, y = self.x[win], self.y[win]
        return _Mask(self, win, (x - cx) ** 2 + (y - cy) ** 2 <= r * r)

    def ellipse(self, cx, cy, rx, ry) -> _Mask:
        win = self._window(cx - rx, cy - ry, cx + rx, cy + ry)
        x, y = self.x[win], self.y[win]
        return _Mask(self, win, ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0)

    def rect(self, x0, y0, x1, y1) -> _Mask:
        win = self._window(x0, y0, x1, y1)
        x, y = self.x[win], self.y[win]
        return _Mask(self, win, (x >= x0) & (x < x1) & (y >= y0) & (y < y1))

    def segment(self, p0, p1, thickness) -> _Mask:
        """Pixels within thickness/2 of the segment p0-p1 (distance to a segment, vectorised)."""
        (x0, y0), (x1, y1) = p0, p1
        r = thickness / 2.0
        win = self._window(min(x0, x1) - r, min(y0, y1) - r, max(x0, x1) + r, max(y0, y1) + r)
        x, y = self.x[win], self.y[win]
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        if length2 < 1e-6:
            t = np.zeros_like(x)
        else:
            t = np.clip(((x - x0) * dx + (y - y0) * dy) / length2, 0.0, 1.0)
        px, py = x0 + t * dx, y0 + t * dy
        return _Mask(self, win, (x - px) ** 2 + (y - py) ** 2 <= r * r)


def _luma(rgb) -> float:
    return float(np.dot(np.asarray(rgb, np.float32), _LUMA))


def _colour_at_luma(rng, luma: float) -> np.ndarray:
    """A saturated non-skin hue with exactly luminance `luma`, so greyscale cannot tell it
    from skin of the same luminance."""
    lo, hi = _NON_SKIN_HUES[rng.integers(len(_NON_SKIN_HUES))]
    hue = rng.uniform(lo, hi) / 360.0
    rgb = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.8), 1.0), np.float32) * 255.0
    for _ in range(4):  # scale towards the target luminance; clipping needs a few rounds
        rgb = np.clip(rgb * (luma / max(_luma(rgb), 1.0)), 0.0, 255.0)
    short = luma - _luma(rgb)
    if short > 0:  # too bright for this saturation: mix towards white (luma 255) to reach it
        rgb = rgb + (short / max(255.0 - _luma(rgb), 1e-3)) * (255.0 - rgb)
    return rgb.astype(np.float32)


def _contrast(rgb: np.ndarray, k: float) -> np.ndarray:
    """Per-channel offset d such that rgb - d and rgb + d both stay in [0, 255].

    Fine marks are drawn as equal areas of rgb - d and rgb + d, so their mean is the
    surrounding colour and area downsampling erases them.
    """
    return k * np.minimum(rgb, 255.0 - rgb)


def _face_mark_offset(skin: np.ndarray) -> np.ndarray:
    """`_contrast` scaled so the marks' luminance contrast depends on the skin's luminance
    only (_MARK_CONTRAST of its distance to black or white, where the colour allows): with the plain
    per-channel bound, marks on a costume colour had another greyscale contrast than marks on
    skin of the same luminance, a skin-colour cue that survives greyscale."""
    d = _contrast(skin, 1.0)
    luma = _luma(skin)
    want = _MARK_CONTRAST * min(luma, 255.0 - luma)
    return d * min(1.0, want / max(_luma(d), 1e-3))


def _background(rng, size: int) -> np.ndarray:
    """Smooth random gradient plus a few static clutter shapes in random colours."""
    corners = rng.uniform(40, 220, size=(2, 2, 3)).astype(np.float32)
    t = (np.arange(size, dtype=np.float32) + 0.5) / size
    ty, tx = t[:, None, None], t[None, :, None]
    top = corners[0, 0] * (1 - tx) + corners[0, 1] * tx
    bottom = corners[1, 0] * (1 - tx) + corners[1, 1] * tx
    image = (top * (1 - ty) + bottom * ty).astype(np.float32)
    canvas = _Canvas(image, 0.0, 0.0)
    for _ in range(rng.integers(2, 5)):
        w, h = rng.uniform(0.08, 0.25, size=2) * size
        cx, cy = rng.uniform(0, size, size=2)
        colour = rng.uniform(0, 255, size=3)
        if rng.random() < 0.5:
            mask = canvas.rect(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        else:
            mask = canvas.ellipse(cx, cy, w / 2, h / 2)
        canvas.paint(mask, colour)
    return canvas.image


# ----------------------------------------------------------------------------- appearance


@dataclasses.dataclass
class _Appearance:
    skin_value: int  # 0 costume colour, 1..3 skin tone
    skin: np.ndarray
    nudity: int
    gender: int  # 0 plain, 1 stripes, 2 checkerboard
    top: np.ndarray  # clothing colours
    pants: np.ndarray
    hair: np.ndarray
    face: list[int]  # per frame
    second: dict | None  # second actor: {"skin_value", "skin", "top", "pants", "linked", ...}


def _sample_skin(rng, visible: bool, tone: int | None = None) -> tuple[int, np.ndarray]:
    tone = int(rng.integers(3)) if tone is None else tone
    skin = np.clip(_SKIN_TONES[tone] + rng.uniform(-10, 10, size=3), 0, 255).astype(np.float32)
    if not visible:
        # "Unidentifiable" costume skin: a non-skin hue at the luminance of a skin sample drawn
        # exactly as visible skin is, so the two have one luminance distribution and greyscale
        # leaves no skin-colour cue (generator v2 drew it differently: a greyscale attacker
        # scored 5.4 points above prevalence).
        luma = _luma(skin)
        for _ in range(50):  # a colour whose face marks can reach skin's contrast (see above)
            colour = _colour_at_luma(rng, luma)
            if _luma(_contrast(colour, 1.0)) >= _MARK_CONTRAST * min(luma, 255.0 - luma):
                break
        return 0, colour
    return tone + 1, skin


def _clothing(rng) -> np.ndarray:
    return _colour_at_luma(rng, _luma(_SKIN_TONES[rng.integers(3)]) + rng.uniform(-15, 15))


def _sample_appearance(rng, num_frames: int, still: bool = False) -> _Appearance:
    skin_value, skin = _sample_skin(rng, rng.random() < _P_SKIN_VISIBLE)
    if still:  # VISPR only labels semi-nudity: keep the labels consistent with PA-HMDB51's
        nudity = int(rng.choice([0, 2]))
    else:
        nudity = int(rng.choice(3, p=_P_NUDITY))
    gender = int(rng.choice(3, p=_P_GENDER))
    base = int(rng.choice(3, p=_P_FACE))
    face = [base] * num_frames
    if num_frames >= 4 and rng.random() < _P_FACE_TURN:
        length = int(rng.integers(2, max(3, num_frames // 2) + 1))
        start = int(rng.integers(0, num_frames - length + 1))
        turned = 0 if base else int(rng.integers(1, 3))
        face[start : start + length] = [turned] * length
    second = None
    if rng.random() < _P_SECOND_ACTOR:
        if skin_value == 0:
            value2, skin2 = _sample_skin(rng, False)
        else:
            value2, skin2 = _sample_skin(rng, True)
        second = {
            "skin_value": value2,
            "skin": skin2,
            "top": _clothing(rng),
            "pants": _clothing(rng),
            "hair": _HAIR[rng.integers(len(_HAIR))],
            "linked": bool(rng.random() < _P_LINK_GIVEN_SECOND),
            "side": float(rng.choice([-1.0, 1.0])),
            "scale": float(rng.uniform(0.55, 0.75)),
            "dist": float(rng.uniform(0.2, 0.3)),
        }
    return _Appearance(
        skin_value=skin_value,
        skin=skin,
        nudity=nudity,
        gender=gender,
        top=_clothing(rng),
        pants=_clothing(rng),
        hair=_HAIR[rng.integers(len(_HAIR))],
        face=face,
        second=second,
    )


def _frame_values(app: _Appearance, frame: int) -> dict:
    """Per-frame PA-HMDB51 values; a list where two actors show different skin tones."""
    skin = app.skin_value
    if app.second is not None and app.skin_value and app.second["skin_value"] != app.skin_value:
        skin = sorted([app.skin_value, app.second["skin_value"]])
    linked = app.second is not None and app.second["linked"]
    return {
        "skin_color": skin,
        "face": app.face[frame],
        "gender": app.gender,
        "nudity": app.nudity,
        "relationship": int(linked),
    }


# ----------------------------------------------------------------------------- the actor


def _draw_person(cv: _Canvas, size: int, x, feet_y, h, pose, look: dict) -> dict:
    """Draws a stick figure with feet at (x, feet_y) and height h; returns hand positions.

    pose: leg swing angle `legs` (rad) and hand offsets `hands` [[dx, dy], [dx, dy]] (px) for
    the (left, right) hands. look: colours, nudity, gender texture, face value.
    """
    limb = max(1.0, size / 24.0)
    head_r = _HEAD * h
    head_y = feet_y - h + head_r
    torso_top = head_y + head_r + 0.01 * h
    torso_bot = torso_top + 0.3 * h
    shorts_bot = torso_bot + 0.12 * h
    half_w = 0.13 * h
    skin, nudity = look["skin"], look["nudity"]
    top = skin if nudity == 2 else look["top"]
    pants = look["pants"]
    shoes = np.array([35, 30, 30], np.float32)

    # Legs: one segment hip -> foot; bare below the shorts when nudity >= 1.
    leg_len = feet_y - (torso_bot + 0.06 * h)
    for side, sign in ((-1.0, 1.0), (1.0, -1.0)):
        hip = (x + side * 0.06 * h, torso_bot + 0.06 * h)
        ang = sign * pose["legs"]
        foot = (hip[0] + leg_len * np.sin(ang), hip[1] + leg_len * np.cos(ang))
        knee = ((hip[0] + foot[0]) / 2, (hip[1] + foot[1]) / 2)
        cv.paint(cv.segment(hip, knee, limb), skin if nudity >= 1 else pants)
        cv.paint(cv.segment(knee, foot, limb), skin if nudity >= 1 else pants)
        cv.paint(cv.disc(foot[0], foot[1], max(0.7, 0.035 * h)), shoes)

    # Torso and shorts; the gender texture goes on the torso clothing, or on the shorts when
    # the torso is bare (semi-nudity).
    torso = cv.rect(x - half_w, torso_top, x + half_w, torso_bot)
    shorts = cv.rect(x - half_w, torso_bot, x + half_w, shorts_bot)
    cv.paint(torso, top)
    cv.paint(shorts, pants)
    if look["gender"]:
        region, colour, y0 = (shorts, pants, torso_bot) if nudity == 2 else (torso, top, torso_top)
        cell = max(1, int(round(size / 64)))
        ry = np.floor((region.y - np.floor(y0)) / cell).astype(np.int32)
        rx = np.floor((region.x - np.floor(x - half_w)) / cell).astype(np.int32)
        pattern = ry % 2 if look["gender"] == 1 else (rx + ry) % 2
        d = _contrast(colour, 0.6)
        cv.paint(region & (pattern == 0), colour - d)
        cv.paint(region & (pattern == 1), colour + d)

    # Arms: in sleeves (nudity 0) or bare (short sleeves, semi-nudity); hands always bare.
    hands = []
    for i, side in enumerate((-1.0, 1.0)):
        shoulder, elbow, hand = _arm(x, feet_y, h, side, pose["hands"][i])
        cv.paint(cv.segment(shoulder, elbow, limb), skin if nudity >= 1 else top)
        cv.paint(cv.segment(elbow, hand, limb), skin if nudity >= 1 else top)
        cv.paint(cv.disc(hand[0], hand[1], max(0.8, 0.045 * h)), skin)
        hands.append(hand)
    if "prop" in look:
        _draw_prop(cv, hands[look["prop"]["hand"]], look["prop"])

    # Head: skin disc with a hair cap; face marks (eyes, mouth) only when the face is visible.
    cv.paint(cv.disc(x, head_y, head_r), skin)
    head = cv.disc(x, head_y, head_r)
    cv.paint(head & (head.y < head_y - 0.45 * head_r), look["hair"])
    _draw_face(cv, size, x, head_y, head_r, skin, look.get("face", 0), look.get("face_side", 1.0))
    return {"hands": hands}


def _draw_face(cv: _Canvas, size: int, x, head_y, head_r, skin, face: int, face_side: float):
    """Eyes and mouth on the head at (x, head_y) for face value 2 (complete), one eye and half
    the mouth on `face_side` for 1 (partial), nothing for 0: marks of skin -/+ an offset in
    equal areas, so their mean is the skin and area downsampling erases them."""
    if not face:
        return
    mark = max(1.0, round(size / 40))
    d = _face_mark_offset(skin)
    sides = (-1.0, 1.0) if face == 2 else (face_side,)
    for side in sides:
        ex = np.floor(x + side * 0.42 * head_r - mark / 2)
        ey = np.floor(head_y - 0.2 * head_r)
        cv.paint(cv.rect(ex, ey, ex + mark, ey + mark), skin - d)  # pupil
        cv.paint(cv.rect(ex, ey + mark, ex + mark, ey + 2 * mark), skin + d)  # eye white
    mx0 = np.floor(x - 0.5 * head_r) if face == 2 or face_side < 0 else x
    mx1 = np.floor(x + 0.5 * head_r) if face == 2 or face_side > 0 else x
    my = np.floor(head_y + 0.45 * head_r)
    cv.paint(cv.rect(mx0, my, mx1, my + mark), skin - d)  # mouth
    cv.paint(cv.rect(mx0, my - mark, mx1, my), skin + d)  # lip highlight


def _prop_geometry(size: int) -> tuple[int, int, int]:
    """(stripe period, grid, patch side) in pixels for the striped prop.

    Period ~4 px at 64x64 (half light, half dark, at least 1 px each). The patch is placed on
    a grid of multiples of 4 px and of the period and spans whole periods and whole 4x4 blocks,
    so every 4x4 block inside it averages to its mean colour whatever the stripe phase: x4 area
    downsampling sees a plain patch, x2 still sees stripes.
    """
    half = max(1, int(round(size / 32.0)))
    period = 2 * half
    grid = int(np.lcm(period, 4))
    side = grid * -(-2 * period // grid)
    return period, grid, side


def _draw_prop(cv: _Canvas, hand, prop: dict) -> None:
    """A striped patch held in `hand`, snapped to the pixel grid (camera jitter included).

    Stripes are vertical bands of prop["colour"] -/+ prop["d"] (equal areas, so its mean is
    the colour), offset by prop["phase"] px: the caller slides the phase frame by frame for
    fine motion.
    """
    period, grid, side = prop["geometry"]
    # Canvas coordinates are pixel centres + 0.5 + offset; back to integer pixel indices.
    col = hand[0] - 0.5 - cv.ox
    row = hand[1] - 0.5 - cv.oy
    c0 = int(grid * np.floor((col - side / 2) / grid + 0.5))
    r0 = int(grid * np.floor((row - side / 2) / grid + 0.5))
    c_lo, c_hi = max(c0, 0), min(c0 + side, cv.size)
    r_lo, r_hi = max(r0, 0), min(r0 + side, cv.size)
    if c_lo >= c_hi or r_lo >= r_hi:
        return
    cols = np.arange(c_lo, c_hi)
    light = (cols + prop["phase"]) % period < period // 2
    sign = np.where(light, 1.0, -1.0).astype(np.float32)[None, :, None]
    cv.image[r_lo:r_hi, c_lo:c_hi] = prop["colour"] + sign * prop["d"]


def _sample_prop(rng, size: int, action: str, num_frames: int) -> dict:
    """The prop's look and per-frame stripe phase, independent of every private attribute."""
    period = _prop_geometry(size)[0]
    # Near-grey with a slight tint: strong luminance contrast, so greyscale keeps the cue.
    grey = rng.uniform(90.0, 165.0)
    colour = np.clip(grey + rng.uniform(-25.0, 25.0, size=3), 0.0, 255.0).astype(np.float32)
    d = _contrast(colour, 0.85)
    phase0 = int(rng.integers(period))
    direction = int(rng.choice([-1, 1]))
    step = max(1, int(round(size / 64.0)))
    moving = action in _FINGERS_MOVING
    phases = [(phase0 + direction * step * f * moving) % period for f in range(num_frames)]
    return {
        "geometry": _prop_geometry(size),
        "colour": colour,
        "d": d,
        "phases": phases,
        "hand": int(rng.integers(2)),
    }


def _motion(rng, action: str, num_frames: int, size: int, prop_hand: int = 0) -> dict:
    """Per-frame body placement and pose for `action`; random start and phase.

    Static-body classes (jump, wave, beckon, clap, rub_hands) and the walkers draw leg and hand
    poses from the same distributions at a random frame, so one frame says little. wave and
    beckon (one arm, the prop's, moves up and down) share their motion, as do clap and
    rub_hands (both forearms move towards each other).
    """
    s = size / 64.0
    t = np.arange(num_frames, dtype=np.float32)
    h_mid = rng.uniform(0.45, 0.65) * size
    amp_leg = rng.uniform(0.25, 0.4)
    amp_hand = size / 32.0  # hand swing of S/16 peak to peak: a few pixels, lost at x4
    x = np.full(num_frames, 0.0, np.float32)
    h = np.full(num_frames, h_mid, np.float32)
    legs = np.full(num_frames, amp_leg * np.sin(rng.uniform(0, 2 * np.pi)), np.float32)
    hands = amp_hand * np.sin(rng.uniform(0, 2 * np.pi, size=(1, 2, 2))).repeat(num_frames, 0)
    lift = np.zeros(num_frames, np.float32)
    speed = 0.0
    if action in ("walk_right", "walk_left", "run_right"):
        run = action == "run_right"
        speed = rng.uniform(1.4, 2.2) * s if run else rng.uniform(0.5, 1.1) * s
        speed *= -1.0 if action == "walk_left" else 1.0
        period = rng.uniform(4, 5) if run else rng.uniform(7, 9)
        legs = amp_leg * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    elif action == "jump":
        period = rng.uniform(5, 8)
        lift = (
            rng.uniform(0.06, 0.1)
            * size
            * np.abs(np.sin(np.pi * t / period + rng.uniform(0, np.pi)))
        )
    elif action in ("wave", "beckon"):  # the hand holding the prop moves up and down
        hands[:, prop_hand, 1] = amp_hand * np.sin(
            2 * np.pi * t / rng.uniform(4, 6) + rng.uniform(0, 6.3)
        )
    elif action in ("clap", "rub_hands"):  # both hands move towards each other
        phase = amp_hand * np.sin(2 * np.pi * t / rng.uniform(4, 6) + rng.uniform(0, 6.3))
        hands[:, 0, 0] = phase
        hands[:, 1, 0] = -phase
    elif action not in ACTIONS:
        raise DataError(f"unknown action {action!r}; expected one of {ACTIONS}")
    travel = speed * (num_frames - 1)
    lo, hi = 0.18 * size - min(travel, 0.0), 0.82 * size - max(travel, 0.0)
    x0 = rng.uniform(lo, hi) if hi > lo else (lo + hi) / 2
    x = x0 + speed * t
    feet_mid = rng.uniform(0.82, 0.95) * size
    feet = feet_mid + 0.5 * (h - h_mid)
    return {"x": x, "h": h, "feet": feet - lift, "legs": legs, "hands": hands, "ground": feet_mid}


def render_video(
    rng: np.random.Generator, cfg: C.SyntheticConfig, action: int, *, still: bool = False
) -> tuple[np.ndarray, dict]:
    """Renders one clip of action index `action`.

    Returns uint8 frames [F, S, S, 3] and the PA-HMDB51 annotation of the clip:
    {attribute: [[start, end, value], ...]} with inclusive 0-based frame intervals.
    `still=True` samples appearance the way the VISPR-style images need (nudity 0 or 2).
    cfg.family "body" renders with tfprivacy/data/synthetic_body.py (its actions, its look).
    """
    if cfg.family == "body":
        return _body().render_video(rng, cfg, action, still=still)
    if not 0 <= action < len(ACTIONS):
        raise DataError(f"action index {action} out of range [0, {len(ACTIONS)})")
    size, num_frames = cfg.frame_size, cfg.frames_per_video
    app = _sample_appearance(rng, num_frames, still=still)
    prop = _sample_prop(rng, size, ACTIONS[action], num_frames)
    move = _motion(rng, ACTIONS[action], num_frames, size, prop["hand"])
    jit = max(1, int(round(size / 64)))
    background = _background(rng, size + 2 * jit)
    noise_sigma = rng.uniform(3.0, 6.0)
    face_side = float(rng.choice([-1.0, 1.0]))
    second = app.second
    if second is not None:
        h2 = second["scale"] * float(np.mean(move["h"]))
        # Beside the main actor's whole path (so they do not walk through each other); the
        # other side when that leaves the frame.
        side2 = second["side"]
        for _ in range(2):
            edge = move["x"].max() if side2 > 0 else move["x"].min()
            x2 = float(edge + side2 * second["dist"] * size)
            if 0.08 * size <= x2 <= 0.92 * size:
                break
            side2 = -side2
        x2 = float(np.clip(x2, 0.08 * size, 0.92 * size))
        feet2 = min(move["ground"] + rng.uniform(-0.03, 0.02) * size, 0.97 * size)
        hands2 = size / 40.0 * np.sin(rng.uniform(0, 2 * np.pi, size=(2, 2)))
    # Camera shake: the offset holds, and now and then jumps to a new one of -1/0/+1 px
    # (x frame_size/64); frequent jumps would drown the small limb motion in global motion.
    offsets = _camera_offsets(rng, num_frames, jit)
    look = {
        "skin": app.skin,
        "nudity": app.nudity,
        "gender": app.gender,
        "top": app.top,
        "pants": app.pants,
        "hair": app.hair,
        "face_side": face_side,
    }
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for f in range(num_frames):
        ox, oy = offsets[f]
        image = background[jit + oy : jit + oy + size, jit + ox : jit + ox + size].copy()
        # Camera jitter moves the scene: shift actor coordinates with the crop of the background.
        cv = _Canvas(image, -float(ox), -float(oy))
        if second is not None:
            look2 = {
                "skin": second["skin"],
                "nudity": 0,
                "gender": 0,
                "top": second["top"],
                "pants": second["pants"],
                "hair": second["hair"],
                "face": 0,
            }
            pose2 = {"legs": 0.0, "hands": hands2}
            drawn2 = _draw_person(cv, size, x2, feet2, h2, pose2, look2)
        pose = {"legs": float(move["legs"][f]), "hands": move["hands"][f]}
        look["face"] = app.face[f]
        look["prop"] = {**prop, "phase": prop["phases"][f]}
        if second is not None and second["linked"]:
            # The link: from the actor's hand nearest the second actor to theirs.
            near = 1 if side2 > 0 else 0
            _draw_link(cv, _hand_position(move, f, near), drawn2["hands"][1 - near])
        _draw_person(cv, size, move["x"][f], move["feet"][f], move["h"][f], pose, look)
        image += rng.normal(0.0, noise_sigma, size=image.shape).astype(np.float32)
        frames[f] = np.clip(np.round(image), 0, 255).astype(np.uint8)
    values = [_frame_values(app, f) for f in range(num_frames)]
    return frames, {a: _intervals([v[a] for v in values]) for a in PRIVACY_ATTRIBUTES}


def _camera_offsets(rng, num_frames: int, jit: int) -> np.ndarray:
    """int64 [F, 2] (x, y) camera offsets: 0 at first, re-drawn from -jit/0/+jit with chance
    _P_JITTER per frame and held otherwise."""
    redraw = rng.random((num_frames, 1)) < _P_JITTER
    draws = rng.integers(-1, 2, size=(num_frames, 2)) * jit
    offsets = np.zeros((num_frames, 2), np.int64)
    for f in range(1, num_frames):
        offsets[f] = np.where(redraw[f], draws[f], offsets[f - 1])
    return offsets


def _draw_link(cv: _Canvas, hand1, hand2) -> None:
    """A thin cord from hand1 to hand2: a dark 1 px line beside a light one, salient at full
    resolution while its mean is mid-grey, so area downsampling leaves little of it."""
    dx, dy = hand2[0] - hand1[0], hand2[1] - hand1[1]
    norm = max(float(np.hypot(dx, dy)), 1e-3)
    nx, ny = -dy / norm, dx / norm
    cv.paint(cv.segment(hand1, hand2, 1.0), _LINK_DARK)
    shifted = ((hand1[0] + nx, hand1[1] + ny), (hand2[0] + nx, hand2[1] + ny))
    cv.paint(cv.segment(*shifted, 1.0), _LINK_LIGHT)


def _arm(x, feet_y, h, side: float, offset) -> tuple:
    """Shoulder, elbow and hand of the arm on `side` (-1 left, +1 right) of a figure."""
    torso_top = feet_y - h + 2 * _HEAD * h + 0.01 * h
    shoulder = (x + side * 0.13 * h, torso_top + 0.03 * h)
    elbow = (shoulder[0] + side * 0.07 * h, shoulder[1] + 0.15 * h)
    hand = (elbow[0] + side * 0.05 * h + offset[0], elbow[1] + 0.13 * h + offset[1])
    return shoulder, elbow, hand


def _hand_position(move: dict, f: int, i: int) -> tuple[float, float]:
    """Hand i (0 left, 1 right) of the main actor in frame f."""
    side = -1.0 if i == 0 else 1.0
    return _arm(move["x"][f], move["feet"][f], move["h"][f], side, move["hands"][f][i])[2]


def _intervals(values: list) -> list:
    """Run-length encodes per-frame values as inclusive [start, end, value] intervals."""
    out = []
    for f, v in enumerate(values):
        if out and out[-1][2] == v:
            out[-1][1] = f
        else:
            out.append([f, f, v])
    return out


# ----------------------------------------------------------------------------- labels


def is_present(value) -> bool:
    """PA-HMDB51 scoring rule: present <=> value != 0 (a mixed list value counts as present)."""
    if isinstance(value, list):
        return any(int(v) != 0 for v in value)
    return int(value) != 0


def frame_labels(annotation: dict, num_frames: int) -> np.ndarray:
    """int8 [num_frames, NUM_ATTRIBUTES] multi-hot from one video's PA-HMDB51 annotation."""
    labels = np.zeros((num_frames, NUM_ATTRIBUTES), np.int8)
    for j, attr in enumerate(PRIVACY_ATTRIBUTES):
        for start, end, value in annotation[attr]:
            labels[start : min(end, num_frames - 1) + 1, j] = int(is_present(value))
    return labels


def load_split(root: str) -> VideoSplit:
    """Reads a generated benchmark (its own layout) into records, for tools and tests.

    The project's real-format loaders read the same files; this reader only serves the
    generator's own checks and the properties probe.
    """
    meta = _read_meta(root)
    actions = meta["actions"]
    num_frames = meta["config"]["frames_per_video"]
    train, test, unused = [], [], []
    for label, action in enumerate(actions):
        with open(os.path.join(root, "annotations", f"{action}.json")) as f:
            annotations = json.load(f)
        with open(os.path.join(root, "splits", f"{action}_test_split1.txt")) as f:
            split = dict(line.split() for line in f if line.strip())
        for name in sorted(annotations):
            record = VideoRecord(
                path=os.path.join(root, "videos", action, name),
                action=label,
                num_frames=num_frames,
                frame_labels=frame_labels(annotations[name], num_frames),
            )
            {"2": test, "1": train, "0": unused}[split[name]].append(record)
    return VideoSplit(train=train, test=test, class_names=list(actions), unused=unused)


def _read_meta(root: str) -> dict:
    path = os.path.join(root, META_FILE)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: missing or unreadable benchmark metadata ({err})") from err


# ----------------------------------------------------------------------------- writers


def _body():
    # Imported on use: synthetic_body imports this module's drawing helpers.
    from tfprivacy.data import synthetic_body

    return synthetic_body


def family_actions(cfg: C.SyntheticConfig) -> tuple[str, ...]:
    """Every action class of cfg.family's generator (a benchmark uses the first num_actions)."""
    return _body().ACTIONS if cfg.family == "body" else ACTIONS


def _version_tag(cfg: C.SyntheticConfig) -> str:
    """v<VERSION>, plus -body<its VERSION> for the body family (it also draws with this
    module's helpers, so both versions key its cache)."""
    if cfg.family == "body":
        return f"v{VERSION}-body{_body().VERSION}"
    return f"v{VERSION}"


def benchmark_root(cfg: C.SyntheticConfig, base_dir: str | None = None, cross: bool = False) -> str:
    """<base>/benchmark-v<VERSION>-<fingerprint> (benchmark_cross-... for the cross variant;
    v<VERSION>-body<N> for the body family, see `_version_tag`).

    base = base_dir or $TFPRIVACY_DATA or ~/.cache/tfprivacy. The generator version is in the
    name so a cache rendered by older generator code is never reused.
    """
    base = base_dir or os.environ.get("TFPRIVACY_DATA") or os.path.join("~", ".cache", "tfprivacy")
    name = "benchmark_cross" if cross else "benchmark"
    return os.path.join(
        os.path.expanduser(base), f"{name}-{_version_tag(cfg)}-{C.fingerprint(cfg)}"
    )


def _check(cfg: C.SyntheticConfig) -> None:
    if cfg.family not in C.SYNTHETIC_FAMILIES:
        raise DataError(f"synthetic.family={cfg.family!r}: must be one of {C.SYNTHETIC_FAMILIES}")
    num = len(family_actions(cfg))
    if not 1 <= cfg.num_actions <= num:
        raise DataError(f"synthetic.num_actions={cfg.num_actions}: must be in [1, {num}]")
    if cfg.num_videos < cfg.num_actions:
        raise DataError(f"synthetic.num_videos={cfg.num_videos} < num_actions={cfg.num_actions}")
    if cfg.frame_size < 16 or cfg.frames_per_video < 1:
        raise DataError(
            f"synthetic.frame_size={cfg.frame_size} (>= 16) / frames_per_video="
            f"{cfg.frames_per_video} (>= 1) out of range"
        )
    if cfg.extra_test_videos < 0:
        raise DataError(f"synthetic.extra_test_videos={cfg.extra_test_videos}: must be >= 0")
    if not 0.0 <= cfg.test_fraction < 1.0:
        raise DataError(f"synthetic.test_fraction={cfg.test_fraction}: must be in [0, 1)")


def _video_rng(cfg: C.SyntheticConfig, stream: int, index: int) -> np.random.Generator:
    # One independent stream per (dataset part, video): any video can be rebuilt on its own.
    return np.random.default_rng([cfg.seed, stream, index])


def _assignments(cfg: C.SyntheticConfig, stream: int) -> list[tuple[int, int, bool]]:
    """(video index, action, is_test), balanced over actions, test stratified per action."""
    per_action = [
        [i for i in range(cfg.num_videos) if i % cfg.num_actions == a]
        for a in range(cfg.num_actions)
    ]
    rng = np.random.default_rng([cfg.seed, stream, 1_000_000])
    out = []
    for action, indices in enumerate(per_action):
        num_test = int(round(len(indices) * cfg.test_fraction))
        test = set(rng.choice(indices, size=num_test, replace=False).tolist())
        out.extend((i, action, i in test) for i in indices)
    # Extra test videos come after num_videos, so the first num_videos keep their split.
    first = cfg.num_videos
    out.extend((i, i % cfg.num_actions, True) for i in range(first, first + cfg.extra_test_videos))
    return sorted(out)


def _validation_jobs(cfg: C.SyntheticConfig) -> list[tuple[int, int]]:
    """(video index, action) of the extra validation videos: after every train and test
    video, so adding them changes none of those."""
    first = cfg.num_videos + cfg.extra_test_videos
    return [(i, i % cfg.num_actions) for i in range(first, first + cfg.extra_val_videos)]


def _progress(iterable, total: int, enabled: bool, desc: str):
    """The generator's progress: one line per split, counted in videos."""
    # mininterval: a log that is not a terminal gets a line every few seconds, not per video.
    return progress_iter(iterable, total, desc, enabled=enabled, unit="video", mininterval=2.0)


def _write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _write_meta(cfg: C.SyntheticConfig, out_dir: str, **extra) -> None:
    meta = {
        "config": dataclasses.asdict(cfg),
        "actions": list(family_actions(cfg)[: cfg.num_actions]),
    }
    if cfg.family == "body":
        extra["body_version"] = _body().VERSION
    meta.update(extra, version=VERSION)
    _write_json(os.path.join(out_dir, META_FILE), meta)


def generate(cfg: C.SyntheticConfig, out_dir: str, progress: bool = True) -> str:
    """Writes the PA-HMDB51/HMDB51-format benchmark into out_dir; meta.json last."""
    _check(cfg)
    actions = family_actions(cfg)[: cfg.num_actions]
    annotations = {a: {} for a in actions}
    splits = {a: [] for a in actions}
    counts = {a: 0 for a in actions}
    # Split labels as HMDB51 writes them: 1 train, 2 test, 0 unused (here: validation).
    jobs = [(i, a, 2 if is_test else 1) for i, a, is_test in _assignments(cfg, stream=0)]
    jobs += [(i, a, 0) for i, a in _validation_jobs(cfg)]
    for index, action, label in _progress(jobs, len(jobs), progress, "benchmark"):
        name = f"{actions[action]}_v{counts[actions[action]]:04d}.avi"
        counts[actions[action]] += 1
        frames, labels = render_video(_video_rng(cfg, 0, index), cfg, action)
        video_io.write_video(
            os.path.join(out_dir, "videos", actions[action], name), frames, cfg.fps, cfg.codec
        )
        annotations[actions[action]][name] = {**labels, "review": False, "note": ""}
        splits[actions[action]].append(f"{name} {label}")
    for action in actions:
        _write_json(os.path.join(out_dir, "annotations", f"{action}.json"), annotations[action])
        path = os.path.join(out_dir, "splits", f"{action}_test_split1.txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(splits[action]) + "\n")
    _write_meta(cfg, out_dir, variant="benchmark")
    return out_dir


def ucf_class_name(action: str) -> str:
    """walk_right -> WalkRight (UCF101 spells classes in CamelCase)."""
    return "".join(part.capitalize() for part in action.split("_"))


def vispr_labels(values: dict) -> list[str]:
    """VISPR attribute ids for one still's PA-HMDB51 values (["a0_safe"] when none)."""
    labels = []
    for attr in PRIVACY_ATTRIBUTES:
        value = values[attr]
        if not is_present(value):
            continue
        ids = VISPR_ATTRIBUTES[attr]  # face's by value: 1 partial, 2 complete
        if attr == "face":
            labels.append(ids[int(value) - 1])
        else:
            labels.append(ids[0])
    return sorted(labels, key=lambda s: int(s.split("_")[0][1:])) or ["a0_safe"]


def generate_cross(cfg: C.SyntheticConfig, out_dir: str, progress: bool = True) -> str:
    """Writes UCF101-format action videos and VISPR-format privacy images; meta.json last."""
    _check(cfg)
    from PIL import Image

    actions = family_actions(cfg)[: cfg.num_actions]
    classes = [ucf_class_name(a) for a in actions]
    ucf = os.path.join(out_dir, "ucf")
    per_class = {a: [] for a in range(len(actions))}
    for index, action, _ in _assignments(cfg, stream=1):
        per_class[action].append(index)
    train_lines, test_lines = [], []
    jobs = [(a, j, i) for a, indices in per_class.items() for j, i in enumerate(indices)]
    for action, j, index in _progress(jobs, len(jobs), progress, "ucf"):
        n = len(per_class[action])
        clips_per_group = max(1, min(4, n // 4))
        num_groups = -(-n // clips_per_group)
        test_groups = max(1, int(round(num_groups * cfg.test_fraction))) if cfg.test_fraction else 0
        group, clip = j // clips_per_group + 1, j % clips_per_group + 1
        cls = classes[action]
        name = f"{cls}/v_{cls}_g{group:02d}_c{clip:02d}.avi"
        frames, _ = render_video(_video_rng(cfg, 1, index), cfg, action)
        video_io.write_video(os.path.join(ucf, "videos", name), frames, cfg.fps, cfg.codec)
        # As in UCF101, whole groups (same actor/scene there) go to one side of the split.
        if group <= test_groups:
            test_lines.append(name)
        else:
            train_lines.append(f"{name} {action + 1}")
    lists = os.path.join(ucf, "ucfTrainTestlist")
    os.makedirs(lists, exist_ok=True)
    for fname, lines in (
        ("classInd.txt", [f"{i + 1} {c}" for i, c in enumerate(classes)]),
        ("trainlist01.txt", train_lines),
        ("testlist01.txt", test_lines),
    ):
        with open(os.path.join(lists, fname), "w") as f:
            f.write("\n".join(lines) + "\n")

    vispr = os.path.join(out_dir, "vispr")
    rng = np.random.default_rng([cfg.seed, 2, 1_000_000])
    num_test = int(round(cfg.num_images * cfg.test_fraction))
    test_ids = set(rng.choice(cfg.num_images, size=num_test, replace=False).tolist())
    for i in _progress(range(cfg.num_images), cfg.num_images, progress, "vispr"):
        image_rng = _video_rng(cfg, 2, i)
        action = int(image_rng.integers(len(actions)))
        frames, labels = render_video(image_rng, cfg, action, still=True)
        f = int(image_rng.integers(len(frames)))
        values = {a: next(v for s, e, v in labels[a] if s <= f <= e) for a in PRIVACY_ATTRIBUTES}
        part = "test2017" if i in test_ids else "train2017"
        image_id = f"2017_{10_000_000 + i}"
        rel = f"images/{part}/{image_id}.jpg"
        os.makedirs(os.path.join(vispr, "images", part), exist_ok=True)
        tmp = os.path.join(vispr, rel + ".tmp")
        Image.fromarray(frames[f]).save(tmp, format="JPEG", quality=95)
        os.replace(tmp, os.path.join(vispr, rel))
        _write_json(
            os.path.join(vispr, "annotations", part, f"{image_id}.json"),
            {"id": image_id, "image_path": rel, "labels": vispr_labels(values)},
        )
    _write_meta(cfg, out_dir, variant="cross", ucf_classes=classes)
    return out_dir


_OWNED = ("videos", "annotations", "splits", "ucf", "vispr")


def ensure_benchmark(cfg: C.SyntheticConfig, root: str, cross: bool = False) -> str:
    """Generates into `root` unless a complete benchmark (meta.json) is already there.

    A directory left half-written by a killed run has no meta.json: the generator's own
    subdirectories are removed and everything is regenerated. Only those subdirectories are
    touched, so pointing `root` at a directory holding other files loses nothing else.
    """
    root = os.path.normpath(root)
    os.makedirs(os.path.dirname(root) or ".", exist_ok=True)
    # Processes sharing a cache (multi-worker runs, parallel tests) take turns: the first
    # generates, the others wait here and then reuse its complete output.
    with open(root + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_locked(cfg, root, cross)


def _ensure_locked(cfg: C.SyntheticConfig, root: str, cross: bool) -> str:
    meta_path = os.path.join(root, META_FILE)
    if os.path.exists(meta_path):
        meta = _read_meta(root)
        want = "cross" if cross else "benchmark"
        stored = meta.get("config")
        if isinstance(stored, dict) and "family" not in stored:
            stored = {**stored, "family": "props"}  # written before SyntheticConfig.family
        body_version = _body().VERSION if cfg.family == "body" else None
        if (
            stored != dataclasses.asdict(cfg)
            or meta.get("variant") != want
            or meta.get("version") != VERSION
            or meta.get("body_version") != body_version
        ):
            raise DataError(
                f"{meta_path}: holds a different benchmark ({meta.get('variant')}, version "
                f"{meta.get('version')}, {meta.get('config')}) than requested ({want}, version "
                f"{VERSION}, {dataclasses.asdict(cfg)}); use another directory or delete this one"
            )
        return root
    for name in _OWNED:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
    os.makedirs(root, exist_ok=True)
    videos = cfg.num_videos + cfg.extra_test_videos + (0 if cross else cfg.extra_val_videos)
    print(
        f"generating the built-in benchmark{' (cross-dataset)' if cross else ''}: {videos} "
        f"videos of {cfg.frames_per_video} frames at {cfg.frame_size} px into {root} "
        "(first use only)",
        file=sys.stderr,
        flush=True,
    )
    (generate_cross if cross else generate)(cfg, root, progress=True)
    return root


# ----------------------------------------------------------------------------- command line
# Its flags in this module's own FlagValues (see tfprivacy.runtime.run_cli).

FLAGS = flags.FlagValues()
flags.DEFINE_string("out", None, "Output directory.", required=True, flag_values=FLAGS)
flags.DEFINE_bool("cross", False, "Write the cross-dataset variant.", flag_values=FLAGS)
flags.DEFINE_bool("tiny", False, "Use the tiny test-sized config.", flag_values=FLAGS)
flags.DEFINE_integer("num_videos", None, "Override num_videos.", flag_values=FLAGS)
flags.DEFINE_integer("seed", None, "Override the seed.", flag_values=FLAGS)
flags.DEFINE_enum(
    "family", None, list(C.SYNTHETIC_FAMILIES), "Override the family.", flag_values=FLAGS
)


def main(argv) -> None:
    """Writes the benchmark into --out and prints what it wrote. argv: the program name alone
    (run_cli)."""
    import time

    del argv
    cfg = C.SyntheticConfig()
    if FLAGS.tiny:
        cfg = C.SyntheticConfig(
            num_videos=48, frames_per_video=8, frame_size=32, num_images=32, extra_test_videos=0
        )
    if FLAGS.num_videos is not None:
        cfg = dataclasses.replace(cfg, num_videos=FLAGS.num_videos)
    if FLAGS.seed is not None:
        cfg = dataclasses.replace(cfg, seed=FLAGS.seed)
    if FLAGS.family is not None:
        cfg = dataclasses.replace(cfg, family=FLAGS.family)
    start = time.time()
    out = (generate_cross if FLAGS.cross else generate)(cfg, FLAGS.out, progress=True)
    images = f", {cfg.num_images} images" if FLAGS.cross else ""
    print(
        f"wrote {cfg.num_videos} videos x {cfg.frames_per_video} frames at {cfg.frame_size}px, "
        f"{cfg.num_actions} actions{images} to {out} in {time.time() - start:.1f}s"
    )


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS, tensorflow=False)  # generating videos needs no TensorFlow
