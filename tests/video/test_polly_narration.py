"""Amazon Polly narration: requests checked against the real Polly service model (botocore's
Stubber), the audio laid under the slides, the MP4 as long as the speech."""

from __future__ import annotations

import io
from pathlib import Path

import boto3
from botocore.response import StreamingBody
from botocore.stub import Stubber

from momentum_video_worker.narration import POLLY_MAX_CHARACTERS, PollyNarrator, split_for_polly
from momentum_video_worker.rendering import render_video


def _pcm(seconds: float) -> StreamingBody:
    data = b"\x00\x01" * int(16_000 * seconds)
    return StreamingBody(io.BytesIO(data), len(data))


def test_long_scripts_are_cut_at_sentences_within_polly_limit() -> None:
    script = " ".join(f"Sentence number {n} is here." for n in range(400))
    pieces = split_for_polly(script)
    assert len(pieces) > 1
    assert all(len(piece) <= POLLY_MAX_CHARACTERS for piece in pieces)
    assert " ".join(pieces) == script
    assert all(piece.endswith(".") for piece in pieces)


def test_polly_narration_sets_the_video_length(tmp_path: Path) -> None:
    client = boto3.client(
        "polly", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    script = "Welcome to day one. Today we learn to poach an egg. Water, vinegar, patience."
    with Stubber(client) as stubber:
        stubber.add_response(
            "synthesize_speech",
            {
                "AudioStream": _pcm(3.5),
                "ContentType": "audio/pcm",
                "RequestCharacters": len(script),
            },
            expected_params={
                "Text": script,
                "TextType": "text",
                "OutputFormat": "pcm",
                "SampleRate": "16000",
                "VoiceId": "Joanna",
                "Engine": "neural",
            },
        )
        rendered = render_video(
            "Poached eggs",
            script,
            tmp_path / "lesson.mp4",
            words_per_minute=150,
            work_dir=tmp_path / "work",
            narrator=PollyNarrator(client, "Joanna"),
        )
        stubber.assert_no_pending_responses()
    assert rendered.narrated is True
    assert abs(rendered.duration_seconds - 3.5) < 0.25
