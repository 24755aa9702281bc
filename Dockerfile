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
RUN pip install .

FROM python:3.11-slim-bookworm AS runtime
RUN useradd --system --create-home --uid 10001 policywatch
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic alembic
COPY config config
COPY docker/entrypoint.sh /usr/local/bin/policywatch-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PTB_TIMEDELTA=true \
    POLICYWATCH_MIGRATIONS_DIR=/app/alembic \
    POLICYWATCH_DATABASE_URL=sqlite:////app/var/policywatch.db
RUN mkdir -p /app/var && chown policywatch /app/var
USER policywatch
VOLUME ["/app/var"]
ENTRYPOINT ["policywatch-entrypoint"]
CMD ["run"]
