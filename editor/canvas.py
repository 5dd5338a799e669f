"""What every edit is exported as: 720x1280 (portrait) at 30 frames a second."""

CANVAS_WIDTH_PX = 720
CANVAS_HEIGHT_PX = 1280
FPS = 30
