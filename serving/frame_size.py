"""Frame sizes of any H x W for f_d, which itself needs multiples of 4 (8 for the pyramid).

One place for how a size is written (S for S x S, or HxW such as 720x1280, height first), how
it is rounded up to f_d's multiple (tfprivacy.models.degrader.variant_multiple) and how a frame
is padded to it. serving.export's SavedModel graph pads the same way (pad_to_multiple) and
crops back; serving.tflite converts at the rounded-up size and its runner pads with pad_frame.

Padding is edge replication at the bottom and right: each added row repeats the frame's last
row, each added column its last column. Not reflect/symmetric padding: those need fewer
padded rows than the frame has (REFLECT: pad < H; SYMMETRIC: pad <= H), and a 1-pixel frame
needs 3 rows for a multiple of 4, 7 for 8. Like them, replication continues the picture
without a new edge, where zero (black) padding would put a hard edge beside the last rows and
columns that f_d's convolutions would answer to in the cropped output. Only the bottom and
right are padded so that the frame keeps its place on f_d's stride-2 grid (and the pyramid's
k x k blocks) and cropping back is [:h, :w]; a frame already at the size is not padded at all.

NumPy and absl only (no TensorFlow): benchmarks define their --sizes flag with it.
"""

from __future__ import annotations

import numpy as np
from absl import flags


class FrameSizeError(ValueError):
    """A frame size that is not S or HxW with sides >= 1; the message names the value."""


def parse_frame_size(size) -> tuple[int, int]:
    """'224' -> (224, 224); '720x1280' (H x W) -> (720, 1280); an int S or a pair (H, W) too."""
    try:
        if isinstance(size, str):
            parts = size.lower().replace(" ", "").split("x")
            if len(parts) > 2:
                raise ValueError(size)
            sides = tuple(int(p) for p in parts)
        elif isinstance(size, int | np.integer):
            sides = (int(size),)
        else:
            sides = tuple(int(p) for p in size)
        height, width = sides if len(sides) == 2 else sides * 2
    except (TypeError, ValueError):
        raise FrameSizeError(
            f"frame size {size!r}: give S (for S x S) or HxW, e.g. 224 or 720x1280"
        ) from None
    if height < 1 or width < 1:
        raise FrameSizeError(f"frame size {size!r}: height and width must be >= 1")
    return height, width


def frame_size_text(size) -> str:
    """(720, 1280) -> '720x1280'; (224, 224) -> '224': what parse_frame_size reads back."""
    height, width = parse_frame_size(size)
    return str(height) if height == width else f"{height}x{width}"


def round_up(size, multiple: int) -> tuple[int, int]:
    """(H, W) of `size` (parse_frame_size) with each side rounded up to `multiple`."""
    height, width = parse_frame_size(size)
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_frame(frame: np.ndarray, shape) -> np.ndarray:
    """One frame [h, w, C] -> [H, W, C] (h <= H, w <= W) by edge replication at the bottom
    and right (see the module doc); the frame itself when it is already H x W."""
    height, width = shape[0], shape[1]
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    if h > height or w > width:
        raise FrameSizeError(f"frame of {h}x{w} does not fit in {height}x{width}")
    return np.pad(frame, ((0, height - h), (0, width - w), (0, 0)), mode="edge")


class FrameSizeParser(flags.ArgumentParser):
    """absl parser of a frame size flag: S or HxW -> (H, W)."""

    syntactic_help = "S or HxW, e.g. 224 or 720x1280"

    def parse(self, argument):
        return parse_frame_size(argument)  # a ValueError: absl names the flag

    def flag_type(self):
        return "frame size"


class FrameSizeSerializer(flags.ArgumentSerializer):
    """(H, W) -> 'HxW' (or 'S'); a multi-valued flag's list of them -> 'S HxW ...' (its help)."""

    def serialize(self, value):
        if isinstance(value, list):
            return " ".join(frame_size_text(v) for v in value)
        return frame_size_text(value)
