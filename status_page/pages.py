"""Rendering HTML pages from ``templates/`` with the request in context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from broadcaster.render import environment
from status_page.branding import current_page


def render_page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/<template>`` as an HTML response, with the page's name and ``brand``."""
    settings = request.app.state.settings
    page = current_page(request.app)
    html = (
        environment()
        .get_template(template)
        .render(request=request, settings=settings, page_name=page["name"], **{"brand": page["brand"], **context})
    )
    return HTMLResponse(html, status_code=status_code)
