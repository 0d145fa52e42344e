# spinehip-cds: the CDS Hooks service under gunicorn, as a numeric non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 spinehip \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home spinehip

# The dependencies, pinned by constraints.txt (as in CI), in a layer of their own: a change to
# the code does not reinstall them.
WORKDIR /src
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -c constraints.txt -r requirements.txt

# The service, installed as a wheel would be (not editable): the bundled hooks, rules and demo
# patients are package data; the source is removed once installed.
COPY README.md LICENSE MANIFEST.in openapi.yaml ./
COPY service ./service
COPY hooks ./hooks
COPY rules ./rules
COPY fixtures ./fixtures
RUN pip install --no-deps -c constraints.txt . \
    && rm -rf /src \
    && mkdir -p /app/var && chown 10001:10001 /app/var

# The working directory holds the data (SQLite under ./var unless DATABASE_URL says otherwise).
WORKDIR /app
USER 10001:10001
ENV SPINEHIP_MODE=production \
    SPINEHIP_HOST=0.0.0.0 \
    SPINEHIP_PORT=8080
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]

CMD ["spinehip", "serve"]
