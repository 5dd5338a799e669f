"""The demo's test picture and tone: scrolling colour bars below a strip with the stream's name and the wall clock,
and a short beep at the start of every second. Pure functions of the frame number and the time, cheap per frame.

The bars are drawn once, twice as wide as the picture, so a frame is a slice of them at a moving offset; only
the strip is drawn with Pillow, and only when its text changes (ten times a second).
"""

from __future__ import annotations

import math
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH_PX, HEIGHT_PX = 1280, 720
STRIP_HEIGHT_PX = 96  # even, so the strip covers whole chroma rows
SCROLL_PX_PER_FRAME = 6  # even, so luma and the half-width chroma planes move together
STRIPE_PERIODS_PER_WIDTH = 24  # diagonal stripes across the bars, so the motion is visible everywhere
FONT_SIZE_PX = 44
SAMPLE_RATE_HZ = 48_000
BEEP_HZ = 660
BEEP_MS = 120
BEEP_AMPLITUDE = 0.12  # of full scale: audible, not loud

# Seventy-five percent colour bars (white, yellow, cyan, green, magenta, red, blue, black), as RGB.
BAR_COLOURS = ((191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0), (191, 0, 191), (191, 0, 0),
               (0, 0, 191), (16, 16, 16))
STRIP_LUMA, TEXT_LUMA = 24, 235
BADGE_YUV = (81, 90, 240)  # the red "LIVE" badge


def yuv_from_rgb(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited-range Y, Cb, Cr of an RGB colour (what H.264 decoders assume without other signalling)."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


class DemoPicture:
    """Frames of the demo picture in yuv420p, as one (height * 3/2, width) array: the Y, U and V planes in turn."""

    def __init__(self, title: str, width: int = WIDTH_PX, height: int = HEIGHT_PX) -> None:
        if width % 16 or height % 2 or height <= STRIP_HEIGHT_PX:
            raise ValueError(f"a {width}x{height} picture cannot hold the demo pattern")
        self.title = title
        self.width, self.height = width, height
        self._y, self._u, self._v = _bars(width, height)
        self._font = ImageFont.load_default(size=FONT_SIZE_PX)
        self._text_top = (STRIP_HEIGHT_PX - FONT_SIZE_PX) // 2 - 4
        self._clock_width = ImageDraw.Draw(Image.new("L", (1, 1))).textlength("00:00:00.0", font=self._font)
        self._strip_base = self._draw_strip_base()
        self._strip_text = ""
        self._strip = np.asarray(self._strip_base)
        self._strip_u, self._strip_v = self._strip_chroma()

    def frame(self, index: int, now_s: float) -> np.ndarray:
        """Frame `index` (it sets the scroll position) showing the wall clock at `now_s` (seconds since the epoch)."""
        w, h = self.width, self.height
        offset = (index * SCROLL_PX_PER_FRAME) % w
        out = np.empty((h * 3 // 2, w), np.uint8)
        luma = out[:h]
        u = out[h:h + h // 4].reshape(h // 2, w // 2)
        v = out[h + h // 4:].reshape(h // 2, w // 2)
        luma[:] = self._y[:, offset:offset + w]
        u[:] = self._u[:, offset // 2:offset // 2 + w // 2]
        v[:] = self._v[:, offset // 2:offset // 2 + w // 2]
        # The strip goes on top: players put their controls along the bottom.
        luma[:STRIP_HEIGHT_PX] = self._strip_luma(clock_text(now_s))
        u[:STRIP_HEIGHT_PX // 2] = self._strip_u
        v[:STRIP_HEIGHT_PX // 2] = self._strip_v
        return out

    def _strip_luma(self, clock: str) -> np.ndarray:
        if clock != self._strip_text:
            self._strip_text = clock
            image = self._strip_base.copy()
            draw = ImageDraw.Draw(image)
            draw.text((self.width - 32 - self._clock_width, self._text_top), clock, fill=TEXT_LUMA, font=self._font)
            self._strip = np.asarray(image)
        return self._strip

    def _draw_strip_base(self) -> Image.Image:
        """The strip without the clock: the badge and the title, cut to fit, drawn once."""
        image = Image.new("L", (self.width, STRIP_HEIGHT_PX), STRIP_LUMA)
        draw = ImageDraw.Draw(image)
        badge = self._badge_box()
        draw.rectangle(badge, fill=BADGE_YUV[0])
        draw.text((badge[0] + 14, self._text_top), "LIVE", fill=TEXT_LUMA, font=self._font)
        room_px = self.width - 32 - self._clock_width - 40 - (badge[2] + 28)
        title = self.title
        while title and draw.textlength(title, font=self._font) > room_px:
            title = title[:-2] + "…"
        draw.text((badge[2] + 28, self._text_top), title, fill=TEXT_LUMA, font=self._font)
        return image

    def _badge_box(self) -> tuple[int, int, int, int]:
        return 32, 16, 32 + 140, STRIP_HEIGHT_PX - 16  # even corners: the badge's chroma covers it exactly

    def _strip_chroma(self) -> tuple[np.ndarray, np.ndarray]:
        u = np.full((STRIP_HEIGHT_PX // 2, self.width // 2), 128, np.uint8)
        v = u.copy()
        left, top, right, bottom = self._badge_box()
        u[top // 2:bottom // 2, left // 2:right // 2] = BADGE_YUV[1]
        v[top // 2:bottom // 2, left // 2:right // 2] = BADGE_YUV[2]
        return u, v


def clock_text(now_s: float) -> str:
    """The wall clock in local time to a tenth of a second: 14:03:27.4."""
    tenths = int(now_s * 10) % 10
    return time.strftime("%H:%M:%S", time.localtime(now_s)) + f".{tenths}"


def _bars(width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bars' Y, U and V planes, twice the picture's width and repeating after one width."""
    bar_width = width // len(BAR_COLOURS)
    yuv = np.array([yuv_from_rgb(c) for c in BAR_COLOURS], np.float32)
    x = np.arange(2 * width)
    per_column = yuv[(x % width) // bar_width]  # (2w, 3)
    rows = np.arange(height)[:, None]
    stripes = np.sin(2 * math.pi * STRIPE_PERIODS_PER_WIDTH * (x[None, :] + rows) / width)
    shade = 0.8 + 0.2 * (1 - rows / height)  # a little lighter at the top
    luma = np.clip(per_column[:, 0][None, :] * shade + 14 * stripes, 16, 235).astype(np.uint8)
    u = np.repeat(per_column[::2, 1][None, :], height // 2, axis=0).astype(np.uint8)
    v = np.repeat(per_column[::2, 2][None, :], height // 2, axis=0).astype(np.uint8)
    return luma, u, v


def tone(first_sample: int, count: int, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """`count` mono int16 samples from sample number `first_sample`: a beep in the first BEEP_MS of each second.

    Counting samples from the Unix epoch puts the beep on the clock's second ticks.
    """
    n = np.arange(first_sample, first_sample + count, dtype=np.int64)
    beeping = (n % sample_rate_hz) < sample_rate_hz * BEEP_MS // 1000
    phase = 2 * math.pi * BEEP_HZ * ((n % sample_rate_hz) / sample_rate_hz)
    return (np.sin(phase) * beeping * BEEP_AMPLITUDE * 32767).astype(np.int16)
