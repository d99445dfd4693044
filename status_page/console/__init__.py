"""The incident commander's console: each module adds its ``routes``; ``_kit`` holds what they share."""

from __future__ import annotations

from starlette.routing import BaseRoute

from status_page.console import (
    admin,
    dashboard,
    deliveries,
    drafts,
    drills,
    page_settings,
    playbooks,
    sandbox,
    subscribers_io,
)

routes: list[BaseRoute] = [
    *dashboard.routes,
    *deliveries.routes,
    *admin.routes,
    *playbooks.routes,
    *drills.routes,
    *sandbox.routes,
    *drafts.routes,
    *page_settings.routes,
    *subscribers_io.routes,
]
