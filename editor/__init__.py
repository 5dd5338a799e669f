"""editor: the sound library (tracks credited to their artist, use counts), challenges (a hashtag, a sound, a
template; ranked videos, trending) and the server-side video editor's render jobs.

Public: `Editor` (the context of one node; `Editor.sounds.audio_path(sound_id)` gives a sound's local audio file),
`EDITOR` (its app key), `add_routes`, `sound_audio_path`; render jobs: `Renders` (edits rendered on one node),
`RENDERS` (its app key), `add_edit_routes`.

The names are loaded when first used (PEP 562): a render process imports `editor.render` alone, without the web
stack (about 150 MB less resident in each render process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from editor.edit_routes import RENDERS, add_edit_routes
    from editor.rendering import Renders
    from editor.routes import EDITOR, add_routes
    from editor.service import Editor
    from editor.sounds import SoundNotFound, sound_audio_path

_HOMES = {"EDITOR": "editor.routes", "add_routes": "editor.routes", "Editor": "editor.service",
          "SoundNotFound": "editor.sounds", "sound_audio_path": "editor.sounds", "RENDERS": "editor.edit_routes",
          "add_edit_routes": "editor.edit_routes", "Renders": "editor.rendering"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'editor' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


__all__ = ["EDITOR", "RENDERS", "Editor", "Renders", "SoundNotFound", "add_edit_routes", "add_routes",
           "sound_audio_path"]
