"""`python -m streamer ...` is the same as the `liveportrait-avatar` command."""
import sys

from .cli import main

sys.exit(main())
