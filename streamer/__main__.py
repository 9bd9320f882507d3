"""`python -m streamer ...` is the same as the `liveportrait-avatar` command."""
import sys

from streamer.cli import main

sys.exit(main())
