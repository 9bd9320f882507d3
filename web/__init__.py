"""The demo page's files, installed as the package `streamer_web` (see setup.py).

This marker makes web/ a regular package, so importlib.resources hands back a real folder in
both a wheel install and an editable one. The server never serves .py files.
"""
