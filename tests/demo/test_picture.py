"""The demo's test picture and tone: the right size and format, moving from frame to frame, the clock and the
title drawn in, and a beep on each second."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest

from livecore.demo.picture import (
    BEEP_MS,
    HEIGHT_PX,
    SAMPLE_RATE_HZ,
    SCROLL_PX_PER_FRAME,
    STRIP_HEIGHT_PX,
    WIDTH_PX,
    DemoPicture,
    clock_text,
    tone,
    yuv_from_rgb,
)

NOON_S = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC


def _planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = HEIGHT_PX, WIDTH_PX
    return frame[:h], frame[h:h + h // 4].reshape(h // 2, w // 2), frame[h + h // 4:].reshape(h // 2, w // 2)


def test_frames_are_720p_yuv420p_that_av_takes_as_is() -> None:
    frame = DemoPicture("A title").frame(0, NOON_S)
    assert frame.shape == (HEIGHT_PX * 3 // 2, WIDTH_PX) and frame.dtype == np.uint8
    video = av.VideoFrame.from_ndarray(frame, format="yuv420p")
    assert (video.width, video.height) == (1280, 720)
    luma, u, v = _planes(frame)
    assert 16 <= luma.min() and luma.max() <= 235, "limited-range luma, as decoders assume"
    assert len(np.unique(u)) > 4 and len(np.unique(v)) > 4, "the bars have colour"


def test_the_pattern_moves_and_repeats_after_one_width() -> None:
    picture = DemoPicture("A title")
    bars = slice(STRIP_HEIGHT_PX, HEIGHT_PX)
    first, second = picture.frame(0, NOON_S), picture.frame(1, NOON_S)
    assert not np.array_equal(first[bars], second[bars])
    # The bars scroll by a whole number of pixels: frame 1's columns are frame 0's, shifted.
    step = SCROLL_PX_PER_FRAME
    assert np.array_equal(second[bars, :-step], first[bars, step:])
    period = math.lcm(step, WIDTH_PX) // step  # frames until the scroll is back where it started
    assert np.array_equal(picture.frame(period, NOON_S), first)


def test_the_clock_and_the_title_are_drawn_in_the_strip() -> None:
    picture = DemoPicture("A title")
    strip = slice(0, STRIP_HEIGHT_PX)
    now, tenth_later = picture.frame(0, NOON_S), picture.frame(0, NOON_S + 0.1)
    assert not np.array_equal(now[strip], tenth_later[strip]), "the clock shows tenths of a second"
    assert np.array_equal(now[STRIP_HEIGHT_PX:], tenth_later[STRIP_HEIGHT_PX:])
    other_title = DemoPicture("Another title, longer").frame(0, NOON_S)
    assert not np.array_equal(now[strip], other_title[strip])
    assert clock_text(NOON_S + 0.37).endswith(".3")


def test_a_title_too_long_for_the_strip_is_cut_not_overflowing() -> None:
    long = DemoPicture("x" * 500).frame(0, NOON_S)
    clock_only = DemoPicture("").frame(0, NOON_S)
    # The clock's corner (the clock is about 220 px wide) is untouched by the title however long it is.
    assert np.array_equal(long[:STRIP_HEIGHT_PX, -270:], clock_only[:STRIP_HEIGHT_PX, -270:])
    assert not np.array_equal(long[:STRIP_HEIGHT_PX], clock_only[:STRIP_HEIGHT_PX])


def test_bt601_limited_range() -> None:
    assert yuv_from_rgb((0, 0, 0)) == (16, 128, 128)
    assert yuv_from_rgb((255, 255, 255)) == (235, 128, 128)
    y, u, v = yuv_from_rgb((255, 0, 0))
    assert (y, u, v) == (81, 90, 240)


def test_the_tone_beeps_at_the_start_of_each_second_and_is_quiet_between() -> None:
    second = tone(5 * SAMPLE_RATE_HZ, SAMPLE_RATE_HZ)  # one whole second, from a second's start
    assert second.dtype == np.int16 and len(second) == SAMPLE_RATE_HZ
    beep = SAMPLE_RATE_HZ * BEEP_MS // 1000
    assert np.abs(second[:beep]).max() > 1000
    assert not second[beep:].any()
    assert np.array_equal(tone(5 * SAMPLE_RATE_HZ + 100, 50), second[100:150]), "frames join without clicks"


def test_a_picture_too_small_for_the_pattern_is_refused() -> None:
    with pytest.raises(ValueError):
        DemoPicture("x", width=100, height=50)
