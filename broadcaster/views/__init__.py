"""Read models for the pages: the public view, Statuspage v2 JSON, uptime."""
