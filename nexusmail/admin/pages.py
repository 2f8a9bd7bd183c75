"""The operators' admin page (server-rendered).

(Placeholder with the interface the daemon mounts; the admin-page issue fills it.)
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from nexusmail.admin.api import ApiServices


def page_routes(services: ApiServices) -> list[BaseRoute]:
    return []
