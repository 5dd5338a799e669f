"""editor: the sound library (tracks credited to their artist, use counts), challenges (a hashtag, a sound, a
template; ranked videos, trending) and, on its own branch, the server-side video editor's render jobs.

Public: `Editor` (the context of one node; `Editor.sounds.audio_path(sound_id)` gives a sound's local audio file),
`EDITOR` (its app key), `add_routes`, `sound_audio_path`; render jobs: `Renders` (edits rendered on one node),
`RENDERS` (its app key), `add_edit_routes`.
"""

from aiohttp import web

from editor import routes
from editor.edit_routes import RENDERS, add_edit_routes
from editor.rendering import Renders
from editor.routes import EDITOR
from editor.service import Editor
from editor.sounds import SoundNotFound, sound_audio_path


def add_routes(app: web.Application) -> None:
    routes.add_routes(app)


__all__ = ["EDITOR", "RENDERS", "Editor", "Renders", "SoundNotFound", "add_edit_routes", "add_routes",
           "sound_audio_path"]
