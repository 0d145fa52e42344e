# spinehip-cds: the CDS Hooks service under gunicorn, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 spinehip \
    && useradd --system --uid 10001 --gid spinehip --home-dir /app --no-create-home spinehip

WORKDIR /app
# Installed in place (editable) so the bundled hooks/, rules/ and fixtures/ next to the package
# are the defaults, exactly as in a source checkout.
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install -e . && mkdir -p var && chown spinehip:spinehip var
COPY hooks ./hooks
COPY rules ./rules
COPY fixtures ./fixtures

USER spinehip
ENV SPINEHIP_MODE=production \
    SPINEHIP_HOST=0.0.0.0 \
    SPINEHIP_PORT=8080
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]

CMD ["spinehip", "serve"]
