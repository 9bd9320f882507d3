#!/usr/bin/env bash
# Download, on this machine, the wheels a lent GPU machine lacks for bench/gpu_sessions.py
# (its image has torch, numpy, aiohttp, opencv-python-headless, prometheus-client, numba;
# see /work/.library/device/KINDS.md): WebRTC (aiortc, av and their needs) and mediapipe.
# For CPython 3.12 manylinux x86-64, in two git-ignored folders, because one device call
# carries at most 64 MiB: .whl/ (WebRTC, ~44 MB) and .whl-mp/ (mediapipe + numpy, ~56 MB).
# Versions are this repo's venv's. numpy < 2 is what mediapipe 0.10.21 was built for.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p .whl .whl-mp
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
      --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_34_x86_64 --platform manylinux_2_31_x86_64)
WEBRTC=(aiortc==1.16.0 av==18.1.0 aioice==0.13.0 pylibsrtp==1.0.0 pyee==13.0.1
        cryptography==50.0.2 pyOpenSSL==26.4.0 google-crc32c==1.9.0 ifaddr==0.2.0
        dnspython==2.9.2 cffi==2.1.1 pycparser==3.12)
MEDIAPIPE=(mediapipe==0.10.21 sounddevice==0.5.6 protobuf==4.25.9 numpy==1.26.4)
get() { "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${PLAT[@]}" -d "$@"; }
get .whl "${WEBRTC[@]}"
get .whl-mp "${MEDIAPIPE[@]}"
# The reference's checkpoint generator travels inside the checkout (../shared does not).
mkdir -p shared/liveportrait_reference
cp ../shared/liveportrait_reference/{make_checkpoints.py,manifest.json,checkpoint_digests_seed1.json} \
    shared/liveportrait_reference/
du -sh .whl .whl-mp shared
