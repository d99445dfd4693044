# broadcaster: one image for the web app, the workers and the migrations.
#   docker build -t broadcaster .
#   docker run --rm -e BROADCASTER_SECRET_KEY=... -e BROADCASTER_DATABASE_URL=... broadcaster
# Two stages: the first builds the wheel from the sources; the image installs that wheel
# (templates, migrations and console assets are package data inside it), never the tree.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

FROM base AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY broadcaster ./broadcaster
COPY channels ./channels
COPY status_page ./status_page
RUN pip wheel --no-deps --wheel-dir /dist .

FROM base
RUN useradd --create-home --uid 10001 broadcaster && install -d -o broadcaster /app
# Dependencies first: this layer is rebuilt only when pyproject.toml changes (an empty
# package with the same requirements is installed, then removed).
COPY pyproject.toml README.md /tmp/deps/
RUN cd /tmp/deps && mkdir broadcaster channels status_page \
    && touch broadcaster/__init__.py channels/__init__.py status_page/__init__.py \
    && pip install . && pip uninstall -y broadcaster && cd / && rm -rf /tmp/deps
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install /tmp/dist/broadcaster-*.whl && pip check && rm -rf /tmp/dist
USER broadcaster
# An empty working directory the user owns: nothing here is imported (a SQLite file would go here).
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD ["python", "-m", "broadcaster.healthcheck", "web"]
CMD ["broadcaster", "serve", "--server", "granian", "--host", "0.0.0.0", "--port", "8000"]
