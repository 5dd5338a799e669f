"""Texts and stickers drawn once with Pillow, then blended into YUV 4:2:0 frames only where and when they are.

An overlay is kept as its Y, U and V planes and its alpha (at luma and at chroma resolution), cut to the part
inside the frame, so blending a frame touches just the pixels it covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TEXT_STROKE_DIVISOR = 16  # the outline that keeps white text legible on bright video: a sixteenth of its size
TEXT_PADDING_PX = 4


@dataclass(frozen=True)
class TextSpec:
    text: str
    x: int
    y: int
    size_px: int
    colour: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class StickerSpec:
    path: str
    x: int
    y: int
    width_px: int | None
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Overlay:
    """An RGBA picture turned into planes, placed at even (x, y) inside a frame, shown from start to end."""

    x: int
    y: int
    start_ms: int
    end_ms: int
    luma: np.ndarray
    cb: np.ndarray
    cr: np.ndarray
    alpha: np.ndarray
    chroma_alpha: np.ndarray

    def shows_at(self, t_ms: float) -> bool:
        return self.start_ms <= t_ms < self.end_ms

    def blend_into(self, y_plane: np.ndarray, u_plane: np.ndarray, v_plane: np.ndarray) -> None:
        """Draw over the frame's planes in place (their region only)."""
        h, w = self.luma.shape
        _mix(y_plane[self.y:self.y + h, self.x:self.x + w], self.luma, self.alpha)
        cy, cx = self.y // 2, self.x // 2
        ch, cw = self.cb.shape
        _mix(u_plane[cy:cy + ch, cx:cx + cw], self.cb, self.chroma_alpha)
        _mix(v_plane[cy:cy + ch, cx:cx + cw], self.cr, self.chroma_alpha)


def _mix(region: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    region[...] = (region * (1.0 - alpha) + colour * alpha + 0.5).astype(np.uint8)


def text_picture(spec: TextSpec) -> Image.Image:
    """The text drawn in its colour with a dark outline on a transparent picture just big enough for it."""
    font = ImageFont.load_default(size=spec.size_px)
    stroke = max(1, spec.size_px // TEXT_STROKE_DIVISOR)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = probe.multiline_textbbox((0, 0), spec.text, font=font, stroke_width=stroke)
    pad = TEXT_PADDING_PX
    picture = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    ImageDraw.Draw(picture).multiline_text((pad - left, pad - top), spec.text, font=font, fill=spec.colour,
                                           stroke_width=stroke, stroke_fill=(0, 0, 0, 255))
    return picture


def sticker_picture(spec: StickerSpec) -> Image.Image:
    with Image.open(spec.path) as opened:
        picture = opened.convert("RGBA")
    if spec.width_px and spec.width_px != picture.width:
        height = max(1, round(picture.height * spec.width_px / picture.width))
        picture = picture.resize((spec.width_px, height), Image.Resampling.LANCZOS)
    return picture


def overlay(picture: Image.Image, x: int, y: int, start_ms: int, end_ms: int, frame_width: int,
            frame_height: int) -> Overlay | None:
    """The picture as planes at (x, y) rounded down to even, cut to the frame; None if nothing of it is inside."""
    x, y = x - x % 2, y - y % 2
    w = min(picture.width, frame_width - x)
    h = min(picture.height, frame_height - y)
    w, h = w - w % 2, h - h % 2
    if w <= 0 or h <= 0:
        return None
    rgba = np.asarray(picture.crop((0, 0, w, h)), dtype=np.float32)
    luma, cb, cr = _bt601_limited(rgba[..., :3])
    alpha = rgba[..., 3] / 255.0
    return Overlay(x=x, y=y, start_ms=start_ms, end_ms=end_ms, luma=luma, cb=_halved(cb), cr=_halved(cr),
                   alpha=alpha, chroma_alpha=_halved(alpha))


def _bt601_limited(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB to the studio-range BT.601 YCbCr that H.264 in yuv420p carries (what swscale assumes by default)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return luma, cb, cr


def _halved(plane: np.ndarray) -> np.ndarray:
    """Average each 2x2 block: a plane at chroma resolution."""
    h, w = plane.shape
    return plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def overlays_of(texts: list[TextSpec], stickers: list[StickerSpec], frame_width: int,
                frame_height: int) -> list[Overlay]:
    """Every text and sticker ready to blend, in drawing order (texts over stickers)."""
    made = [overlay(sticker_picture(s), s.x, s.y, s.start_ms, s.end_ms, frame_width, frame_height)
            for s in stickers]
    made += [overlay(text_picture(t), t.x, t.y, t.start_ms, t.end_ms, frame_width, frame_height) for t in texts]
    return [o for o in made if o is not None]


def is_png_with_size(path: Path) -> tuple[int, int]:
    """The PNG's size; ValueError when the file is not a PNG Pillow can read."""
    try:
        with Image.open(path) as picture:
            if picture.format != "PNG":
                raise ValueError(f"this is {picture.format or 'not an image'}, not a PNG")
            picture.verify()
            return picture.size
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"not a readable PNG ({exc})") from exc
