# syntax=docker/dockerfile:1
# Multi-stage build: dependencies and the project are installed into a virtualenv in the build
# stage; the runtime stage copies only that virtualenv, the migrations and the config.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY scrapers scrapers
COPY models models
COPY pipeline pipeline
COPY delivery delivery
COPY policywatch policywatch
RUN pip install .

FROM python:3.11-slim-bookworm AS runtime
RUN useradd --system --create-home --uid 10001 policywatch
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic alembic
COPY config config
COPY docker/entrypoint.sh /usr/local/bin/policywatch-entrypoint
# MALLOC_ARENA_MAX: glibc gives each thread (the SQLite connections' threads) its own arena and
# keeps what is freed there; two arenas measured 250.6 MB resident against 261.9 MB at the end
# of the soak test's six simulated hours (docs/performance.md, "Memory").
ENV PATH=/opt/venv/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONUNBUFFERED=1 \
    PTB_TIMEDELTA=true \
    POLICYWATCH_MIGRATIONS_DIR=/app/alembic \
    POLICYWATCH_DATABASE_URL=sqlite:////app/var/policywatch.db \
    POLICYWATCH_HEALTH_ADDR=0.0.0.0:8080
RUN mkdir -p /app/var && chown policywatch /app/var
USER policywatch
VOLUME ["/app/var"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["policywatch-entrypoint"]
CMD ["run"]
