# GPU image: the liveportrait engine on CUDA, the mesh engine as fallback. Not buildable on the
# development machines (no Docker there); kept consistent with pyproject.toml by hand.
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

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

WORKDIR /app
# Dependencies first (better layer caching): the default torch wheel on Linux is the CUDA 12 build.
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY streamer ./streamer
COPY web ./web
# Editable, as in development: the server serves web/ from beside streamer/.
# Importing the mesh kernels compiles them into NUMBA_CACHE_DIR, so the server loads them
# at start instead of compiling (about 5 s) in every new container.
RUN pip install --upgrade pip && pip install -e . \
 && python -c "import cv2, mediapipe, torch; print('cv2', cv2.__version__, 'torch', torch.__version__)" \
 && python -c "import engine.mesh.kernels"

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
