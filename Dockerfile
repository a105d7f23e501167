# The CHFEN image: the `chfen` command line with the exact environment of requirements.lock.
# docker-compose.yml runs it as the Prefect worker (`chfen serve`); any other command works too:
#   docker compose run --rm worker chfen quality
#
# requirements.lock is compiled for x86_64 manylinux (see its header), so build on (or for)
# linux/amd64. Its torch is the plain PyPI build, as in the local .venv: no extra index URL, the
# CUDA wheels (nvidia-*) come with it, and it runs on CPU where there is no GPU.
FROM python:3.11-slim

# Offline at run time: models come from Python packages; no telemetry.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    PYANNOTE_METRICS_ENABLED=0 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1

# The programs the pipeline shells out to (scripts/setup.sh installs the same ones locally).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg espeak-ng \
    && rm -rf /var/lib/apt/lists/*

# uv, the installer scripts/setup.sh uses (same version as the local .venv).
ARG UV_VERSION=0.13.9
RUN pip install "uv==${UV_VERSION}" && python -m venv /opt/venv

WORKDIR /app

# The locked dependencies first, in their own layer: a code change does not reinstall them.
COPY requirements.lock ./
RUN uv pip install --python /opt/venv/bin/python -r requirements.lock

# Then the project itself, without touching the locked versions.
COPY pyproject.toml README.md ./
COPY chfen ./chfen
COPY flows ./flows
COPY labeling ./labeling
COPY warehouse ./warehouse
RUN uv pip install --python /opt/venv/bin/python --no-deps . \
    && chfen --help >/dev/null

# A non-root user. /data is the data root (docker-compose.yml mounts a volume there, shared
# read-only with Label Studio); it exists in the image so a new volume gets this owner.
ARG UID=1000
RUN useradd --create-home --uid "${UID}" --shell /usr/sbin/nologin chfen \
    && mkdir -p /data/media \
    && chown -R chfen:chfen /data
ENV CHFEN_DATA_ROOT=/data
USER chfen

CMD ["chfen", "serve"]
