"""Thumbnails of anything renderable, with optional label / mask / box overlays.

Accepted inputs: ``PIL.Image``, numpy arrays (HW, HWC, CHW; float in 0..1, other float
ranges are min-max scaled; uint8; other ints scaled by their max; bool), torch tensors
(anything with ``.detach().cpu().numpy()``; CHW preferred), 1-D numeric arrays (drawn as
a line), file paths and encoded image bytes, a mapping with an ``image`` (or ``input``,
``inputs``, ``data``, ``path``) entry plus optional ``label``/``target``, ``prediction``/
``pred``, ``mask`` and ``boxes``, a dataset item ``(input, label, ...)`` (the label becomes
the caption when it is a scalar), or anything a ``preview_fn`` turns into one of those.
Torch is never imported here.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIME = {"JPEG": "image/jpeg", "WEBP": "image/webp"}
_IMAGE_KEYS = ("image", "input", "inputs", "data", "path", "img")
_PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
                     [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0]], dtype=np.uint8)


class NotRenderable(TypeError):
    """The object cannot be turned into an image."""


def _as_numpy(obj: Any) -> np.ndarray | None:
    if isinstance(obj, np.ndarray):
        return obj
    if all(hasattr(obj, a) for a in ("detach", "cpu", "numpy")):  # torch.Tensor without importing torch
        return np.asarray(obj.detach().cpu().numpy())
    if isinstance(obj, list | tuple) and obj and all(isinstance(v, int | float) for v in obj):
        return np.asarray(obj, dtype=np.float64)
    return None


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "b":
        return arr.astype(np.uint8) * 255
    a = arr.astype(np.float32, copy=False)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 0.0)
    if arr.dtype.kind == "f":
        lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
        if lo >= 0.0 and hi <= 1.0:
            return (a * 255.0 + 0.5).astype(np.uint8)
        if lo >= 0.0 and hi <= 255.0 and hi > 1.0:
            return (a + 0.5).astype(np.uint8)
    else:
        lo = float(min(a.min(initial=0.0), 0.0))
        hi = float(a.max(initial=0.0))
        if lo >= 0.0 and hi <= 255.0:
            return a.astype(np.uint8)
    span = hi - lo
    if span <= 0:
        return np.zeros(a.shape, dtype=np.uint8)
    return ((a - lo) * (255.0 / span) + 0.5).clip(0, 255).astype(np.uint8)


def _line_plot(values: np.ndarray, width: int = 256, height: int = 96) -> Image.Image:
    v = values.astype(np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    img = Image.new("RGB", (width, height), (255, 255, 255))
    if v.size == 0:
        return img
    if v.size > width * 2:  # min/max per column keeps peaks
        cols = np.array_split(v, width)
        v = np.array([x for c in cols for x in (c.min(), c.max())])
    lo, hi = float(v.min()), float(v.max())
    span = (hi - lo) or 1.0
    xs = np.linspace(0, width - 1, v.size)
    ys = (height - 1) - (v - lo) / span * (height - 1)
    ImageDraw.Draw(img).line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=(0, 90, 200), width=1)
    return img


def array_to_image(arr: np.ndarray, *, channels_first: bool | None = None) -> Image.Image:
    """HW / HWC / CHW (or a leading batch of 1) to a PIL image; 1-D arrays become a line plot."""
    a = np.asarray(arr)
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 1:
        return _line_plot(a)
    if a.ndim == 3:
        first, last = a.shape[0] in (1, 2, 3, 4), a.shape[-1] in (1, 2, 3, 4)
        chw = first and (channels_first if channels_first is not None and last else not last)
        if chw:
            a = np.moveaxis(a, 0, -1)
        if a.shape[-1] == 1:
            a = a[..., 0]
        elif a.shape[-1] == 2:
            a = a[..., 0]
        elif a.shape[-1] > 4:
            a = a[..., :3]
    if a.ndim not in (2, 3):
        raise NotRenderable(f"cannot render an array of shape {np.shape(arr)}")
    a = np.ascontiguousarray(_to_uint8(a))
    return Image.fromarray(a)


def to_image(obj: Any, *, size_hint: int = 0) -> Image.Image:
    """Best-effort conversion of ``obj`` to a PIL image (paths and bytes are decoded lazily)."""
    if isinstance(obj, Image.Image):
        return obj
    if isinstance(obj, str | os.PathLike | bytes | bytearray):
        src = io.BytesIO(bytes(obj)) if isinstance(obj, bytes | bytearray) else os.fspath(obj)
        img = Image.open(src)
        if size_hint and img.format == "JPEG":
            img.draft("RGB", (size_hint, size_hint))  # DCT scaling: decode big JPEGs fast
        img.load()
        return img
    arr = _as_numpy(obj)
    if arr is not None:
        is_tensor = not isinstance(obj, np.ndarray | list | tuple)
        return array_to_image(arr, channels_first=True if is_tensor else None)
    raise NotRenderable(f"cannot render a {type(obj).__name__}; pass preview_fn to convert it")


def thumbnail(img: Image.Image, size: int, *, upscale: bool = False) -> Image.Image:
    """Longest edge ``size``; smaller sources keep their size unless ``upscale``."""
    w, h = img.size
    longest = max(w, h)
    if size <= 0 or longest == size or (longest < size and not upscale):
        return img
    scale = size / longest
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if "A" in img.getbands() or img.mode == "P" else "RGB")
    return img.resize(new, Image.Resampling.BILINEAR, reducing_gap=2.0 if scale < 1 else None)


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    arr = _as_numpy(value)
    if arr is not None and arr.size == 1:
        value = arr.reshape(-1)[0]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _overlay_mask(img: Image.Image, mask: Any, alpha: float) -> Image.Image:
    m = _as_numpy(mask)
    if m is None:
        m = np.asarray(mask)
    m = np.squeeze(m)
    if m.ndim != 2:
        raise NotRenderable(f"mask must be 2-D, got shape {np.shape(mask)}")
    if m.dtype.kind == "f":
        ids = (m > 0.5).astype(np.int64)
    else:
        ids = m.astype(np.int64)
    colors = _PALETTE[np.mod(ids, len(_PALETTE) - 1) + (ids > 0)] * (ids > 0)[..., None]
    colors = colors.astype(np.uint8)
    layer = Image.fromarray(colors).resize(img.size, Image.Resampling.NEAREST)
    hit = Image.fromarray(((ids > 0) * int(255 * alpha)).astype(np.uint8)).resize(img.size, Image.Resampling.NEAREST)
    base = img.convert("RGB")
    base.paste(layer, (0, 0), hit)
    return base


def _draw_boxes(img: Image.Image, boxes: Any, source_size: tuple[int, int]) -> Image.Image:
    arr = _as_numpy(boxes)
    b = np.asarray(boxes if arr is None else arr, dtype=np.float64)
    if b.size == 0:
        return img
    if b.ndim == 1:
        b = b.reshape(1, -1)
    if b.shape[1] < 4:
        raise NotRenderable("boxes must be (n, 4+) as x0, y0, x1, y1 [, class]")
    xy = b[:, :4].copy()
    if xy.max() > 1.0 + 1e-6:  # pixel coordinates of the source image
        xy[:, [0, 2]] *= img.size[0] / max(1, source_size[0])
        xy[:, [1, 3]] *= img.size[1] / max(1, source_size[1])
    else:  # normalised coordinates
        xy[:, [0, 2]] *= img.size[0]
        xy[:, [1, 3]] *= img.size[1]
    out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    for i, (x0, y0, x1, y1) in enumerate(xy.tolist()):
        cls = int(b[i, 4]) if b.shape[1] > 4 and np.isfinite(b[i, 4]) else i
        color = tuple(int(c) for c in _PALETTE[1 + cls % (len(_PALETTE) - 1)])
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=color, width=2)
    return out


def _draw_caption(img: Image.Image, label: Any, prediction: Any) -> Image.Image:
    parts = []
    if label is not None:
        parts.append(f"label: {_text(label)}")
    if prediction is not None:
        parts.append(f"pred: {_text(prediction)}")
    if not parts:
        return img
    out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    text = "  ".join(parts)
    box = draw.textbbox((0, 0), text, font=font)
    if box[3] + 4 > out.size[1] // 2:  # a banner would hide a small image (e.g. 8x8 digits): leave it out
        return img
    ok = label is None or prediction is None or _text(label) == _text(prediction)
    draw.rectangle([0, 0, min(out.size[0], box[2] + 6), box[3] + 4], fill=(0, 110, 0) if ok else (170, 0, 0))
    draw.text((3, 2), text, fill=(255, 255, 255), font=font)
    return out


def encode(img: Image.Image, fmt: str = "auto", quality: int = 85) -> tuple[bytes, str]:
    """JPEG for opaque images, WebP when there is alpha (``fmt`` ``jpeg``/``webp`` forces one)."""
    fmt = fmt.upper()
    if img.mode in ("I", "F") or img.mode.startswith("I;"):
        img = Image.fromarray(_to_uint8(np.asarray(img)))
    has_alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
    if fmt == "AUTO":
        fmt = "WEBP" if has_alpha else "JPEG"
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in MIME:
        raise ValueError(f"unsupported preview format {fmt!r}: expected jpeg, webp or auto")
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    elif fmt == "WEBP" and img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if has_alpha else "RGB")
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, "WEBP", quality=quality, method=0)
    return buf.getvalue(), MIME[fmt]


def render_preview(sample: Any, size: int = 720, *, upscale: bool = False, fmt: str = "auto",
                   quality: int = 85, preview_fn: Callable[[Any], Any] | None = None,
                   label: Any = None, prediction: Any = None, mask: Any = None, boxes: Any = None,
                   mask_alpha: float = 0.45) -> tuple[bytes, str]:
    """``(bytes, mime)`` thumbnail of ``sample`` with longest edge ``size`` (and overlays)."""
    if preview_fn is not None:
        sample = preview_fn(sample)
    if isinstance(sample, tuple | list) and 2 <= len(sample) <= 4 and _as_numpy(sample) is None:
        # a dataset item such as (image, label) or (image, target, ...): render the input
        target = sample[1]
        if label is None and (np.ndim(target) == 0 or isinstance(target, str)):
            label = target
        sample = sample[0]
    if isinstance(sample, Mapping):
        label = sample.get("label", sample.get("target")) if label is None else label
        prediction = sample.get("prediction", sample.get("pred")) if prediction is None else prediction
        mask = sample.get("mask") if mask is None else mask
        boxes = sample.get("boxes") if boxes is None else boxes
        key = next((k for k in _IMAGE_KEYS if sample.get(k) is not None), None)
        if key is None:
            raise NotRenderable(f"sample mapping has none of {_IMAGE_KEYS}")
        sample = sample[key]
    img = to_image(sample, size_hint=size)
    source_size = img.size
    img = thumbnail(img, size, upscale=upscale)
    if mask is not None:
        img = _overlay_mask(img, mask, mask_alpha)
    if boxes is not None:
        img = _draw_boxes(img, boxes, source_size)
    if label is not None or prediction is not None:
        img = _draw_caption(img, label, prediction)
    return encode(img, fmt, quality)
