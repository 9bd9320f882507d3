#!/usr/bin/env bash
# On a lent GPU machine, from the repository root. First, here: bash bench/gpu_wheels.sh
# (fills .whl/, .whl-mp/ and shared/liveportrait_reference/). One device call carries at most
# 64 MiB, so the wheels go in two calls on the same warm machine; each installs what it
# carries into .site/ (git-ignored, kept between calls there):
#   run(carry=[".whl"],    command="bash bench/gpu_sessions.sh --install-only")
#   run(carry=[".whl-mp"], command="bash bench/gpu_sessions.sh [gpu_sessions.py options]")
# mediapipe imports cv2; the image's opencv-python-headless provides it.
set -uo pipefail
for d in .whl .whl-mp; do
    if compgen -G "$d/*.whl" > /dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target .site "$d"/*.whl || exit 1
    fi
done
[ "${1:-}" = "--install-only" ] && { ls .site | head -50; exit 0; }
export PYTHONPATH=$PWD/.site:$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 bench/gpu_sessions.py --server-log "$OUT/server.log" "$@" 2>&1 | tee "$OUT/gpu_sessions.log"
