"""JSON schemas of the page's own answers (``status_page/api/page.py``): the brand and the contact channels."""

from __future__ import annotations

from status_page.api.openapi_schemas import (
    BOOLEAN,
    INTEGER,
    STRING,
    STRING_OR_NULL,
    TIME_OR_NULL,
    Schema,
    array,
    obj,
    ref,
)

_IMAGE: Schema = {
    "oneOf": [
        {"type": "null"},
        obj(
            {
                "content_type": {"type": "string", "enum": ["image/png", "image/svg+xml"]},
                "bytes": INTEGER,
                "url": STRING,
            }
        ),
    ]
}

PAGE_SCHEMAS: dict[str, Schema] = {
    "ContactChannel": obj(
        {
            "name": STRING,
            "state": {"type": "string", "enum": ["open", "busy", "closed"]},
            "note": STRING,
            "url": STRING_OR_NULL,
        }
    ),
    "Page": obj(
        {
            "name": STRING,
            "description": STRING_OR_NULL,
            "accent_color": STRING_OR_NULL,
            "links": array(obj({"label": STRING, "url": STRING})),
            "custom_css": STRING,
            "stylesheet_url": {**STRING_OR_NULL, "description": "the accent and custom CSS, content-hashed"},
            "logo": _IMAGE,
            "favicon": _IMAGE,
            "contact_channels": array(ref("ContactChannel")),
            "contact_banner": {**BOOLEAN, "description": "some channel is not open: the page shows the banner"},
            "updated_at": TIME_OR_NULL,
        }
    ),
    "ContactChannelsSaved": obj(
        {
            "contact_channels": array(ref("ContactChannel")),
            "contact_banner": BOOLEAN,
            "update": {
                "oneOf": [{"type": "null"}, obj({"incident_id": STRING, "update_id": STRING})],
                "description": "the update posted with notify (null: a quiet change)",
            },
        }
    ),
}
