# deeproot web service, CPU image: `deeproot serve` with onnxruntime (CPU).
#
#   docker build -t deeproot .
#   docker run --rm -p 8000:8000 deeproot                       # demo bundle + demo catalog
#   docker run --rm -p 8000:8000 -v $PWD/deeproot-data:/data deeproot \
#       deeproot serve --host 0.0.0.0 --workers 2               # your catalog and bundle
#
# Reads (docs/web.md): DEEPROOT_DATA_DIR (/data: catalog.duckdb, models/default/),
# DEEPROOT_SERVE_MODELS, DEEPROOT_SERVE_DB, DEEPROOT_SERVE_DEVICE, DEEPROOT_SERVE_MAX_UPLOAD_MB,
# DEEPROOT_SERVE_MAX_PHOTOS, DEEPROOT_SERVE_QUEUE, DEEPROOT_SERVE_UPLOAD_IDLE_S, DEEPROOT_THREADS.
# The app keeps no state:
# add workers (--workers) or replicas behind any load balancer.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEEPROOT_DATA_DIR=/data

WORKDIR /opt/deeproot
COPY pyproject.toml README.md ./
COPY src ./src
# crawl: the crawler builds the bundled demo catalog at start when /data has no catalog
RUN pip install ".[infer,web,crawl]" \
    && useradd --uid 10001 --create-home deeproot \
    && mkdir -p /data && chown deeproot /data

USER deeproot
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status != 200)"
# SIGTERM (docker stop) ends the server cleanly; photos are never written to /data or anywhere.
CMD ["deeproot", "serve", "--host", "0.0.0.0", "--port", "8000"]
