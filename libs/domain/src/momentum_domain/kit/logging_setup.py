"""Log set-up shared by every service: one line per record on stderr, as text for people at a
terminal or as JSON for CloudWatch Logs (``MOMENTUM_LOG_FORMAT``), each JSON line carrying the
current span's trace and span ids and the API request's id, so a line leads to its trace."""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from momentum_domain.config import Settings

# The id of the API request being handled (set by the API's access log middleware).
request_id: ContextVar[str | None] = ContextVar("momentum_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# What every LogRecord has; anything else on a record came from ``extra=`` and goes in the line
# (except uvicorn's copy of the message with terminal colours).
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, trace and span ids of the
    current span (when one is recording), the request id, the record's extras and any
    exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = trace.format_trace_id(context.trace_id)
            entry["span_id"] = trace.format_span_id(context.span_id)
        if (current := request_id.get()) is not None:
            entry["request_id"] = current
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value  # an explicit extra (e.g. the access log's ids) wins
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(settings: Settings, level: str = "INFO") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` configuration for a service process. The API hands it
    to uvicorn, which applies it in each of its worker processes as well."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if settings.log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        # uvicorn's own loggers write through the root handler, in the same format.
        "loggers": {
            name: {"level": level, "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def setup_logging(settings: Settings, level: str = "INFO") -> None:
    """Configure the process's logging (replacing any earlier configuration)."""
    logging.config.dictConfig(logging_config(settings, level))


__all__ = ["JsonFormatter", "logging_config", "request_id", "setup_logging"]
