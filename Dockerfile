# marketo-pipeline: multi-stage, slim, non-root.
# The base is pinned to a Python patch release and a Debian release; a registry that needs byte-for-byte builds
# adds the digest it serves for that tag (docker buildx imagetools inspect python:3.11.14-slim-bookworm).
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY pipeline ./pipeline
# Every dependency from the lock file, each checked against its hashes; then the package alone.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip==25.3 \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="marketo-pipeline" \
      org.opencontainers.image.description="Keeps a Marketo instance in sync with lead-change events on Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --home-dir /app pipeline
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY config ./config
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
USER pipeline
EXPOSE 9108 8089
# /healthz answers while the event loop runs (the simulator image overrides this with its own command).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PIPELINE_HTTP__PORT', '9108'), timeout=2)"]
ENTRYPOINT ["marketo-pipeline"]
CMD ["run"]
