"""One decoding layer in front of every handler: text that no handler (and no PostgreSQL column)
can take is refused here, as a 400 naming the field, instead of failing deep inside.

- NUL characters, in path and query parameters, headers and JSON strings (PostgreSQL's text
  cannot hold them);
- bytes that are not UTF-8, in the path, the query and the body (JSON is UTF-8), and lone
  surrogates escaped in JSON strings (not encodable as UTF-8 either), and both in form fields
  and uploads' file names;
- JSON nested deeper than ``MAX_JSON_DEPTH``, counted before any parser recurses into it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any
from urllib.parse import unquote_to_bytes

from litestar import Request
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.exceptions import ValidationException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

# Well above any body the API defines (five levels at most), well below a parser's recursion.
MAX_JSON_DEPTH = 32
NUL_MESSAGE = "Contains a NUL character"
UTF8_MESSAGE = "Not valid UTF-8"
_WITH_BODY = ("POST", "PUT", "PATCH", "DELETE")
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
# A JSON string, unterminated included (it runs to the end: a parser stops there too). Matching
# each string once keeps the scan linear, whatever the quotes and backslashes.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
# After the strings are gone, brackets become +1 (opening) and -1 (closing, as a signed byte).
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
# An escape that decodes to NUL or to a UTF-16 surrogate; only then is the body walked.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def refuse(field: str, source: str, message: str) -> ValidationException:
    """The validation error ``problems.handle_http_exception`` turns into a 400 naming the
    field (``key`` "data" is the body as a whole)."""
    return ValidationException(
        detail=message, extra=[{"key": field or "data", "source": source, "message": message}]
    )


def json_depth(body: bytes) -> int:
    """How deep the JSON's arrays and objects nest, counted without parsing it."""
    steps = _JSON_STRING.sub(b"", body).translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def unfit_text(text: str) -> str | None:
    """Why the text cannot be stored, or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return f"{UTF8_MESSAGE} (a lone surrogate)"
    return None


def _unfit_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, reason) for each string in decoded JSON that cannot be stored, keys
    included; paths are written as msgspec writes them: ``items[1].text``."""
    if isinstance(value, str):
        if (reason := unfit_text(value)) is not None:
            yield path, reason
    elif isinstance(value, dict):
        for key, item in value.items():
            field = f"{path}.{key}" if path else key
            if (reason := unfit_text(key)) is not None:
                yield path, f"A field name: {reason[0].lower()}{reason[1:]}"
            else:
                yield from _unfit_strings(item, field)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unfit_strings(item, f"{path}[{index}]")


def check_json(body: bytes) -> None:
    try:
        body.decode()
    except UnicodeDecodeError:
        raise refuse("", "body", UTF8_MESSAGE) from None
    if json_depth(body) > MAX_JSON_DEPTH:
        raise refuse("", "body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if not _SUSPECT_ESCAPE.search(body):
        return
    try:
        # The standard library's parser, as the webhooks': unlike msgspec's, it keeps lone
        # surrogates, so they are found here too.
        decoded = json.loads(body)
    except ValueError:
        return  # not JSON: the handler says so
    for field, reason in _unfit_strings(decoded):
        raise refuse(field, "body", reason)


def check_form(form: FormMultiDict) -> None:
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            name, value = f"{name}.filename", value.filename or ""
        if (reason := unfit_text(value)) is not None:
            raise refuse(name, "body", reason)


def _decoded(raw: bytes, field: str, source: str) -> str:
    text = unquote_to_bytes(raw)
    if b"\x00" in text:
        raise refuse(field, source, NUL_MESSAGE)
    try:
        return text.decode()
    except UnicodeDecodeError:
        raise refuse(field, source, UTF8_MESSAGE) from None


def check_query(query_string: bytes) -> None:
    for pair in query_string.split(b"&"):
        raw_name, _, raw_value = pair.replace(b"+", b" ").partition(b"=")
        name = _decoded(raw_name, unquote_to_bytes(raw_name).decode(errors="replace"), "query")
        _decoded(raw_value, name, "query")


def check_path(scope: Scope) -> None:
    params: dict[str, Any] = scope.get("path_params") or {}
    # The server decoded the path already, replacing bytes that are not UTF-8 with U+FFFD.
    suspect = next((n for n, v in params.items() if isinstance(v, str) and "\ufffd" in v), "")
    raw_path = scope.get("raw_path") or scope["path"].encode(errors="surrogateescape")
    try:
        unquote_to_bytes(raw_path).decode()
    except UnicodeDecodeError:
        raise refuse(suspect, "path", UTF8_MESSAGE) from None
    for name, value in params.items():
        if isinstance(value, str) and (reason := unfit_text(value)) is not None:
            raise refuse(name, "path", reason)


def check_headers(scope: Scope) -> None:
    for name, value in scope["headers"]:
        if b"\x00" in value:
            raise refuse(name.decode("latin-1").lower(), "header", NUL_MESSAGE)


class InputGuardMiddleware(ASGIMiddleware):
    """Runs after routing (the path parameters are known) and before everything else."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        check_path(scope)
        check_query(scope.get("query_string", b""))
        check_headers(scope)
        request: Request[Any, Any, Any] = Request(scope, receive)
        if request.method in _WITH_BODY:
            # Read once here: the handler's request finds the body (or form) cached in the scope.
            if request.content_type[0] in _FORMS:
                check_form(await request.form())
            elif body := await request.body():
                check_json(body)
        await next_app(scope, receive, send)


__all__ = ["MAX_JSON_DEPTH", "InputGuardMiddleware", "check_json", "json_depth", "unfit_text"]
