"""Small images (8x8 digits) keep their picture: the label banner is left out when it would cover it."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from weightslab_data_cache.previews import render_preview


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.int16)


def test_different_small_images_give_different_thumbnails_with_a_label():
    square = np.zeros((8, 8), np.uint8)
    square[2:6, 2:6] = 255
    blank = np.zeros((8, 8), np.uint8)
    a, _ = render_preview((square, 3), size=64)
    b, _ = render_preview((blank, 3), size=64)
    diff = np.abs(_pixels(a) - _pixels(b))
    assert diff.max() > 100  # the square is visible, not covered by a caption


def test_large_images_still_get_the_caption():
    big = np.zeros((200, 200), np.uint8)
    data, _ = render_preview((big, 3))
    rgb = Image.open(io.BytesIO(data)).convert("RGB")
    r, g, b = rgb.getpixel((1, 1))
    assert g > 80 and r < 60  # the green "label: 3" banner
