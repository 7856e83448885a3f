"""Thumbnail rendering of every accepted input kind."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from weightslab_data_cache.previews import NotRenderable, render_preview


class FakeTensor:
    """Duck-typed like torch.Tensor (the package never imports torch)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def detach(self) -> FakeTensor:
        return self

    def cpu(self) -> FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.array


def _rand(*shape: int) -> FakeTensor:
    return FakeTensor(np.random.default_rng(1).random(shape, dtype=np.float32))


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("sample, size", [
    (np.random.default_rng(0).random((60, 80)), (80, 60)),  # HW float 0..1
    (np.random.default_rng(0).random((60, 80, 3)), (80, 60)),  # HWC
    (np.random.default_rng(0).random((3, 60, 80)), (80, 60)),  # CHW
    ((np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8), (80, 60)),
    (_rand(3, 60, 80), (80, 60)),  # tensor CHW
    (_rand(1, 60, 80), (80, 60)),  # tensor 1HW
    (_rand(1, 3, 60, 80), (80, 60)),  # batch of one
    (_rand(3, 60, 3), (3, 60)),  # ambiguous: a tensor is read as CHW
    (np.random.default_rng(0).standard_normal((3, 60, 80)) * 4, (80, 60)),  # normalised input
    (np.arange(60 * 80, dtype=np.uint16).reshape(60, 80), (80, 60)),
])
def test_arrays_and_tensors(sample: object, size: tuple[int, int]) -> None:
    data, mime = render_preview(sample, 720)
    assert mime == "image/jpeg"
    assert _open(data).size == size  # never upscaled


def test_real_torch_tensor() -> None:
    # The nox session installs torch for this test: in CI a missing torch fails, never skips.
    torch = __import__("torch") if os.environ.get("CI") else pytest.importorskip("torch")
    data, _ = render_preview(torch.rand(3, 60, 80, requires_grad=True), 40)
    assert _open(data).size == (40, 30)


def test_longest_edge_and_upscale() -> None:
    img = np.zeros((100, 400, 3), dtype=np.uint8)
    assert _open(render_preview(img, 200)[0]).size == (200, 50)
    small = np.zeros((10, 20), dtype=np.uint8)
    assert _open(render_preview(small, 200)[0]).size == (20, 10)
    assert _open(render_preview(small, 200, upscale=True)[0]).size == (200, 100)


def test_pil_path_and_bytes(tmp_path: Path) -> None:
    img = Image.new("RGB", (300, 150), (200, 10, 10))
    path = tmp_path / "a.jpg"
    img.save(path)
    assert _open(render_preview(img, 100)[0]).size == (100, 50)
    assert _open(render_preview(path, 100)[0]).size == (100, 50)
    assert _open(render_preview(str(path), 100)[0]).size == (100, 50)
    assert _open(render_preview(path.read_bytes(), 100)[0]).size == (100, 50)


def test_alpha_gives_webp_and_format_can_be_forced() -> None:
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    data, mime = render_preview(rgba, 64)
    assert mime == "image/webp" and _open(data).format == "WEBP"
    data, mime = render_preview(np.zeros((20, 20)), 64, fmt="webp")
    assert mime == "image/webp"
    with pytest.raises(ValueError, match="unsupported preview format"):
        render_preview(np.zeros((4, 4)), 64, fmt="gif")


def test_preview_fn_and_custom_data() -> None:
    class Record:
        pixels = np.ones((8, 16), dtype=np.uint8) * 255

    with pytest.raises(NotRenderable, match="preview_fn"):
        render_preview(Record(), 64)
    data, _ = render_preview(Record(), 64, preview_fn=lambda r: r.pixels)
    assert _open(data).size == (16, 8)


def test_dataset_item_tuple() -> None:
    base = np.full((32, 32, 3), 128, dtype=np.uint8)
    data, _ = render_preview((base, 3), 32, fmt="webp")
    top = np.asarray(_open(data).convert("RGB"), dtype=int)[:6]
    assert np.abs(top - 128).mean() > 20  # captioned with the label
    assert _open(render_preview((base, np.zeros((32, 32)), "meta"), 16)[0]).size == (16, 16)


def test_one_dimensional_signal_is_drawn() -> None:
    data, _ = render_preview(np.sin(np.linspace(0, 10, 5000)), 720)
    assert _open(data).size == (256, 96)


def test_overlays_change_pixels() -> None:
    base = np.full((64, 64, 3), 128, dtype=np.uint8)
    plain = np.asarray(_open(render_preview(base, 64, fmt="webp")[0]).convert("RGB"), dtype=int)
    mask = np.zeros((64, 64), dtype=np.int64)
    mask[32:, :] = 2
    masked = np.asarray(_open(render_preview(base, 64, mask=mask, fmt="webp")[0]).convert("RGB"), dtype=int)
    assert np.abs(masked[48:] - plain[48:]).mean() > 20 and np.abs(masked[:16] - plain[:16]).mean() < 5
    boxed = np.asarray(_open(render_preview({"image": base, "boxes": [[8, 8, 40, 40]]}, 64, fmt="webp")[0])
                       .convert("RGB"), dtype=int)
    assert np.abs(boxed[8, 8:40] - plain[8, 8:40]).mean() > 20
    captioned = np.asarray(_open(render_preview({"image": base, "label": 1, "prediction": 2}, 64,
                                                fmt="webp")[0]).convert("RGB"), dtype=int)
    assert np.abs(captioned[:8] - plain[:8]).mean() > 20 and np.abs(captioned[40:] - plain[40:]).mean() < 5


def test_unrenderable_input() -> None:
    with pytest.raises(NotRenderable):
        render_preview(object(), 64)
    with pytest.raises(NotRenderable):
        render_preview({"label": 1}, 64)
