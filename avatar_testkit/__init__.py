"""Code shared by the tests and the benchmarks (and usable by anyone driving a server).

- `pyclient`: a Python client for sessions (WebSocket protocol + aiortc receiver) and the
  multipart form of /render and POST /sessions.
- `wait`: `wait_until`, to wait on a condition with a generous deadline instead of sleeping.
- `load`: REST load generators and a server started as a subprocess (bench/load.py, tests).
- `soak`: session create/stream/close cycles with leftover counting (bench/soak.py, tests).
- `browsers`: where Chromium and Firefox are, and the banner when browser tests were skipped.
- `firefox`: headless Firefox ESR driven over Marionette (marionette-driver, no geckodriver).

It is a package of this project (pyproject's packages.find), so the editable install
(`make install-test`) makes it importable from tests/ and bench/ alike.
"""
