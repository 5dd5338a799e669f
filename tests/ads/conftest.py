"""The ads tests post videos and read feeds with the feeds tests' helpers (tests/feeds/feedclient.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "feeds"))
