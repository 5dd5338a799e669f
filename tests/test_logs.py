"""The node's logs: libraries that narrate every ICE check stay quiet unless the node runs at DEBUG."""

from __future__ import annotations

import logging

from livecore import logs


def test_chatty_libraries_speak_at_warning_unless_debugging() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in logs.CHATTY_LIBRARIES}
    try:
        logs.configure("INFO", "n1")
        assert not logging.getLogger("aioice.ice").isEnabledFor(logging.INFO)
        assert logging.getLogger("aioice.ice").isEnabledFor(logging.WARNING)
        assert logging.getLogger("livecore.media").isEnabledFor(logging.INFO)
        logs.configure("DEBUG", "n1")
        assert logging.getLogger("aioice.ice").isEnabledFor(logging.DEBUG)
    finally:
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)
