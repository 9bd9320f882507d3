"""Package layout that pyproject.toml cannot say on its own.

The demo page lives in web/ at the repository root (plain files, no build step). It ships as
the data package `streamer_web`, mapped onto web/, so a wheel carries it and an editable
install reads it in place; streamer/web_assets.py finds it through importlib.resources.
Everything else (name, version, dependencies, scripts) is in pyproject.toml.
"""
from setuptools import find_namespace_packages, setup

# web/ and each folder under it (js/, css/, ...) is a package, so that every file in them is
# package data and setuptools has no unlisted importable folder to warn about.
WEB_PACKAGES = ["streamer_web", *(f"streamer_web.{p}" for p in find_namespace_packages(where="web"))]

setup(
    packages=[*find_namespace_packages(include=["engine", "engine.*", "streamer", "streamer.*",
                                                    "avatar_testkit", "avatar_testkit.*"]), *WEB_PACKAGES],
    package_dir={"streamer_web": "web"},
    package_data={name: ["*"] for name in WEB_PACKAGES},
)
