"""Rendering HTML pages from ``templates/`` with the request in context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from broadcaster.render import environment


def render_page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/<template>`` as an HTML response."""
    settings = request.app.state.settings
    html = (
        environment()
        .get_template(template)
        .render(request=request, settings=settings, page_name=settings.page_name, **context)
    )
    return HTMLResponse(html, status_code=status_code)
