# GPU image: the liveportrait engine on CUDA, the mesh engine as fallback. Not buildable on the
# development machines (no Docker there); kept consistent with pyproject.toml and setup.py by hand.
# Two stages: `build` turns the source into a wheel; the image installs that wheel (as
# `pip install` gives the package to anyone), so no source tree is in it.
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 AS base

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HOME=/cache/huggingface \
    NUMBA_CACHE_DIR=/opt/numba-cache

# Python 3.11 (Ubuntu 22.04 ships it); libGL/glib for OpenCV, libgomp for torch.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv libgl1 libglib2.0-0 libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv

RUN pip install --upgrade pip

# The wheel: engine/, streamer/ and web/ (as the package streamer_web, see setup.py).
FROM base AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY engine ./engine
COPY streamer ./streamer
COPY web ./web
RUN pip wheel --no-deps . -w /dist

FROM base
# The default torch wheel on Linux is the CUDA 12 build. Importing the mesh kernels compiles
# them into NUMBA_CACHE_DIR, so the server loads them at start instead of compiling (about 5 s)
# in every new container.
COPY --from=build /dist /dist
RUN pip install /dist/*.whl && rm -rf /dist \
 && python -c "import cv2, mediapipe, torch; print('cv2', cv2.__version__, 'torch', torch.__version__)" \
 && python -c "import engine.mesh.kernels, streamer_web"

WORKDIR /app

RUN useradd --create-home --uid 10001 avatar \
 && mkdir -p /cache/huggingface /data/outputs \
 && chown -R avatar:avatar /cache /data /opt/numba-cache
USER avatar

VOLUME ["/cache/huggingface", "/data/outputs"]
EXPOSE 8001

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import json, urllib.request as u; assert json.load(u.urlopen('http://127.0.0.1:8001/health', timeout=4))['status'] == 'healthy'"

# auto: liveportrait when the GPU and the weights (HF cache volume, or a download) are there, else mesh.
CMD ["liveportrait-avatar", "serve", "--host", "0.0.0.0", "--port", "8001", "--engine", "auto", "--output-dir", "/data/outputs"]
