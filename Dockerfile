# syntax=docker/dockerfile:1
#
# InsightHub image: one image for every role of the distributed mode (API node, workers,
# migration); compose.yaml picks the role by command.
#
# The project is installed in editable mode at /app on purpose: the CLI needs alembic/,
# alembic.ini and web/node_modules beside the packages at run time, exactly as in a checkout,
# so the image keeps the repository layout instead of a copy in site-packages that would lose
# them. /app and /opt/venv are built and copied at the same paths, which the editable finder
# records.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim

# --- web: Node lives only here; the final image gets the installed node_modules ------------
FROM ${NODE_IMAGE} AS web
WORKDIR /app/web
COPY web/package.json web/package-lock.json ./
# The chat page serves socket.io-client from web/node_modules: fail the build, not the page.
RUN npm ci --no-audit --no-fund \
    && test -d node_modules/socket.io-client

# --- python: the virtualenv with the dependencies and the project ---------------------------
FROM ${PYTHON_IMAGE} AS python
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml README.m[d] ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY app/ app/
COPY workers/ workers/
COPY alembic/ alembic/
COPY alembic.ini ./
RUN pip install --no-deps -e . \
    && python -m compileall -q app workers alembic

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    INSIGHTHUB_DATA_DIR=/app/data
RUN groupadd --system --gid 10001 insighthub \
    && useradd --system --uid 10001 --gid insighthub --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin insighthub
COPY --from=python /opt/venv /opt/venv
COPY --from=python /app /app
COPY --from=web /app/web/node_modules /app/web/node_modules
# Code stays root-owned (read-only for the service); only the data folder is writable, and
# a named volume mounted there starts with this ownership.
RUN mkdir -p /app/data && chown insighthub:insighthub /app/data
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# slim has no curl: ask with the Python that is already here. urlopen raises on 4xx/5xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["insighthub", "serve", "--host", "0.0.0.0", "--port", "8000"]
