"""Speech arriving on one WebSocket: the open utterance its binary PCM chunks belong to.

One socket has at most one open utterance; a new ``speak`` ends the previous one (as if
``speak_end`` had come). Closing the socket ends its open utterance, which then plays out.
"""
from __future__ import annotations

import numpy as np

from streamer.sessions.messages import MessageError
from streamer.sessions.speech import SpeechError, SpeechPlayer, Utterance
from streamer.sessions.speech_messages import Interrupt, Speak, SpeakEnd


class SocketSpeech:
    def __init__(self, player: SpeechPlayer) -> None:
        self.player = player
        self.open: Utterance | None = None

    def handle(self, msg: Speak | SpeakEnd | Interrupt) -> None:
        """Raises MessageError for the socket's error event."""
        if isinstance(msg, Speak):
            self._end_open()
            try:
                self.open = self.player.begin(msg.id, msg.sample_rate, msg.timings)
            except SpeechError as exc:
                raise MessageError(exc.code, exc.message, "speak", msg.id) from None
        elif isinstance(msg, SpeakEnd):
            if self.open is None or (msg.id is not None and msg.id != self.open.id):
                raise MessageError("invalid_message", "speak_end: no open utterance with this id",
                                   "speak_end", msg.id)
            self._end_open()
        elif isinstance(msg, Interrupt):
            # The open utterance stays open but cut: chunks still in flight are dropped
            # quietly instead of each earning an error event.
            self.player.interrupt()

    def handle_binary(self, data: bytes) -> None:
        """One chunk of PCM for the open utterance. Raises MessageError."""
        u = self.open
        if u is None:
            raise MessageError("binary_not_supported", "binary messages carry speech audio: "
                               "send a 'speak' message first",
                               "audio", None)
        if u.interrupted:
            return
        if len(data) % 2:
            raise MessageError("invalid_audio", "pcm_s16le chunks need an even byte count; "
                               "this chunk was dropped", "audio", u.id)
        pcm = np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)
        try:
            self.player.feed(u, pcm)
        except SpeechError as exc:
            raise MessageError(exc.code, exc.message, "audio", u.id) from None

    def _end_open(self) -> None:
        if self.open is not None:
            self.player.end(self.open)
            self.open = None

    def close(self) -> None:
        self._end_open()
