"""The Starlette app: public status page, APIs, console and agent desk."""
