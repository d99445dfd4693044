"""The status mirror: the public page as static files, pushed by the worker to other infrastructure.

``site`` renders the page into objects (key -> body, content type, cache control), ``targets``
puts them in an S3-compatible bucket or a local directory, ``push`` sends only what changed
since the last successful push (content hashes in ``mirror_objects``), and ``channel`` makes it
the ``mirror`` broadcast channel, registered through the ``broadcaster.channels`` entry point.
"""
