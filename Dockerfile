# The monitor as a container: SQLite in /data by default, settings in /config/monitor.yaml.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch from the CPU wheel index: the default index would bring gigabytes of CUDA packages.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY monitor ./monitor
RUN pip install -c constraints.txt .

FROM python:3.11-slim
# MONITOR_HTTP__HOST: the ops endpoint listens on 127.0.0.1 unless told otherwise; in the container
# it must listen on every interface to be published (-p 8000:8000).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MONITOR_CONFIG=/config/monitor.yaml \
    MONITOR_DATABASE_URL=sqlite:////data/monitor.db \
    MONITOR_CACHE_DIR=/data/cache \
    MONITOR_HTTP__HOST=0.0.0.0 \
    MALLOC_ARENA_MAX=2
RUN groupadd --gid 10001 monitor \
    && useradd --create-home --uid 10001 --gid 10001 monitor \
    && mkdir -p /data /config \
    && chown monitor:monitor /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic
COPY seeds ./seeds
COPY config ./config
COPY config/monitor.yaml /config/monitor.yaml
# Runs `monitor db upgrade` first when MONITOR_MIGRATE=1; `docker run IMAGE poll --once` still works.
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/docker-entrypoint
USER 10001:10001
VOLUME ["/data"]
# The analysts' desk, its API, /healthz, /readyz and /metrics (http.port).
EXPOSE 8000
# Ready = database reachable, model loaded, scheduler running; loading the model takes a while.
HEALTHCHECK --interval=30s --timeout=5s --start-period=3m --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MONITOR_HTTP__PORT', '8000') + '/readyz', timeout=4)"]
ENTRYPOINT ["/usr/local/bin/docker-entrypoint"]
CMD ["monitor", "run"]
