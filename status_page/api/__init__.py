"""Machine interfaces: the admin REST API (v1), Statuspage v2 JSON, OpenAPI, Twilio callbacks."""
