"""Bedrock model ids. A cross-region inference profile puts a geography in front of the model's
id (``us.anthropic.claude-...``): it is priced as the model, and the IAM policy must allow both
the profile and the model in every region of its geography. One list, for the price table and
the Pulumi program alike."""

from __future__ import annotations

INFERENCE_PROFILE_PREFIXES = ("us.", "us-gov.", "eu.", "apac.", "ca.", "jp.", "au.", "global.")


def base_model_id(model_id: str) -> str:
    """The foundation model an inference profile routes to; a model id unchanged."""
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            return model_id.removeprefix(prefix)
    return model_id


def is_inference_profile(model_id: str) -> bool:
    return base_model_id(model_id) != model_id
