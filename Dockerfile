# broadcaster: one image for the web app, the workers and the migrations.
#   docker build -t broadcaster .
#   docker run --rm -e BROADCASTER_SECRET_KEY=... -e BROADCASTER_DATABASE_URL=... broadcaster
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 broadcaster
WORKDIR /app
# Dependencies first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir broadcaster channels status_page \
    && touch broadcaster/__init__.py channels/__init__.py status_page/__init__.py \
    && pip install . && pip uninstall -y broadcaster && rm -rf broadcaster channels status_page build
COPY broadcaster ./broadcaster
COPY channels ./channels
COPY status_page ./status_page
COPY templates ./templates
# Editable: templates/ is found next to the package (Settings.templates_dir).
RUN pip install --no-deps -e .
USER broadcaster
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD ["python", "-m", "broadcaster.healthcheck", "web"]
CMD ["broadcaster", "serve", "--server", "granian", "--host", "0.0.0.0", "--port", "8000"]
