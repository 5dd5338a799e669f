"""The browser pages: Jinja2 templates on one layout (webui/templates), their assets (webui/static).

Public: `add_routes` (the pages at their URLs and the assets under /static/), `CONTENT_SECURITY_POLICY`.
"""

from webui.pages import CONTENT_SECURITY_POLICY
from webui.routes import add_routes

__all__ = ["CONTENT_SECURITY_POLICY", "add_routes"]
