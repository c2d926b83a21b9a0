"""Narration for the local renderer: a WAV file of the script read aloud.

Amazon Polly when configured (the cheap production option on AWS), espeak-ng where installed
(the embedded default), and otherwise none: the renderer then lays a silent track as long as
the script would take to read."""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any, Protocol

POLLY_SAMPLE_RATE = 16_000
# Polly takes at most 3,000 characters of plain text per request.
POLLY_MAX_CHARACTERS = 2_900
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Narrator(Protocol):
    def narrate(self, script: str, output: Path, words_per_minute: int) -> bool:
        """Write ``output`` as a WAV file and return True, or return False for no narration."""
        ...


class EspeakNarrator:
    def narrate(self, script: str, output: Path, words_per_minute: int) -> bool:
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            return False
        text = output.with_suffix(".txt")
        text.write_text(script, encoding="utf-8")
        subprocess.run(  # noqa: S603 - a fixed binary with our own arguments
            [espeak, "-s", str(words_per_minute), "-w", str(output), "-f", str(text)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        return True


class PollyNarrator:
    """Amazon Polly's neural voices; the script goes in pieces of whole sentences."""

    def __init__(self, client: Any, voice_id: str) -> None:
        self._client = client
        self._voice_id = voice_id

    def narrate(self, script: str, output: Path, words_per_minute: int) -> bool:
        with wave.open(str(output), "wb") as audio:
            audio.setnchannels(1)
            audio.setsampwidth(2)  # Polly's PCM is signed 16-bit little-endian
            audio.setframerate(POLLY_SAMPLE_RATE)
            for piece in split_for_polly(script):
                response = self._client.synthesize_speech(
                    Text=piece,
                    TextType="text",
                    OutputFormat="pcm",
                    SampleRate=str(POLLY_SAMPLE_RATE),
                    VoiceId=self._voice_id,
                    Engine="neural",
                )
                audio.writeframes(response["AudioStream"].read())
        return True


def split_for_polly(script: str, limit: int = POLLY_MAX_CHARACTERS) -> list[str]:
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(script.strip()):
        while len(sentence) > limit:  # a sentence longer than a request: cut at a space
            cut = sentence.rfind(" ", 0, limit) if " " in sentence[:limit] else limit
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces
