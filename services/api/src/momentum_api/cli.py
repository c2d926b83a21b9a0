"""``momentum``: the operator's command line, a client of the HTTP API (local or remote).

momentum generate "Intro to SQL" --days 7 --wait
momentum smoke --base-url https://api.example.com --expect-version 3f2c1a9
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from momentum_domain.config import get_settings
from momentum_domain.kit.heartbeat import WORKER_KINDS

console = Console()
STEP_WEIGHT = {"PENDING": 0, "QUEUED": 0, "RUNNING": 0, "SUCCEEDED": 1, "FAILED": 0, "CANCELLED": 0}
FINISHED = {"SUCCEEDED", "FAILED", "CANCELLED"}
SMOKE_CHECKS = (
    ("live", "/health/live"),
    ("ready", "/health/ready"),
    ("catalog", "/courses?limit=1"),
    ("categories", "/categories"),
)


class CliError(Exception):
    pass


def _client(args: argparse.Namespace) -> httpx.Client:
    return httpx.Client(base_url=args.base_url.rstrip("/"), timeout=30.0)


def _check(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        problem = response.json()
        detail = problem.get("detail") or problem
    except ValueError:
        detail = response.text
    raise CliError(
        f"{response.request.method} {response.request.url.path}: {response.status_code} {detail}"
    )


def _token(args: argparse.Namespace, client: httpx.Client) -> str:
    """An access token: --token / MOMENTUM_TOKEN, else sign in with --email/--password, else
    the embedded setup's demo admin (written by `make dev`)."""
    if args.token:
        return str(args.token)
    email, password = args.email, args.password
    if not email:
        demo = get_settings().data_dir / "demo-accounts.json"
        if not demo.exists():
            raise CliError("Give --token, or --email and --password (no demo accounts found).")
        admin = next(a for a in json.loads(demo.read_text()) if a["role"] == "ADMIN")
        email, password = admin["email"], admin["password"]
    tokens = _check(client.post("/auth/sign-in", json={"email": email, "password": password}))
    return str(tokens["access_token"])


def generate(args: argparse.Namespace) -> int:
    with _client(args) as client:
        headers = {"Authorization": f"Bearer {_token(args, client)}"}
        if args.idempotency_key:
            headers["Idempotency-Key"] = args.idempotency_key
        body: dict[str, Any] = {"topic": args.topic, "duration_days": args.days}
        for name in ("audience", "level", "tone", "language", "model"):
            if getattr(args, name):
                body[name] = getattr(args, name)
        if args.reference:
            body["reference_document_ids"] = args.reference
        job = _check(client.post("/admin/generation-jobs", json=body, headers=headers))
        console.print(f"Queued job [bold]{job['id']}[/bold] for “{args.topic}” ({args.days} days).")
        if not args.wait:
            return 0
        job = _follow(client, headers, job["id"], args.poll)
    tokens = f"{job['input_tokens']} input / {job['output_tokens']} output tokens"
    console.print(f"Job {job['status']}: cost ${job['cost_usd']:.4f} ({tokens}).")
    if job["status"] == "SUCCEEDED":
        console.print(f"Review the draft: {job['review_url']}")
        return 0
    console.print(f"[red]{job.get('error') or 'the job did not succeed'}[/red]")
    return 1


def _follow(client: httpx.Client, headers: dict[str, str], job_id: str, poll: float) -> Any:
    """A live progress bar per lesson (its content, then its script) until the job ends."""
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TextColumn("{task.fields[state]}"),
        console=console,
    ) as progress:
        tasks: dict[str, Any] = {}
        while True:
            job = _check(client.get(f"/admin/generation-jobs/{job_id}", headers=headers))
            steps = {(s["kind"], s["day"]): s["status"] for s in job["steps"]}
            _bar(progress, tasks, "outline", "Outline", [steps[("OUTLINE", 0)]])
            for lesson in job["lessons"]:
                day = lesson["day"]
                _bar(
                    progress, tasks, f"day{day}", f"Day {day}", [lesson["lesson"], lesson["script"]]
                )
            _bar(progress, tasks, "finish", "Thumbnail+save",
                 [steps[("THUMBNAIL", 0)], steps[("SAVE", 0)], steps[("NOTIFY", 0)]])  # fmt: skip
            if job["status"] in FINISHED:
                return job
            time.sleep(poll)


def _bar(
    progress: Progress, tasks: dict[str, Any], key: str, label: str, states: list[str]
) -> None:
    done = sum(STEP_WEIGHT[state] for state in states)
    state = next((s for s in states if s != "SUCCEEDED"), "SUCCEEDED")
    if key not in tasks:
        tasks[key] = progress.add_task(label, total=len(states), state=state)
    progress.update(tasks[key], completed=done, state=state)


def _version_checks(client: httpx.Client, expected: str) -> list[tuple[str, bool, str]]:
    """The API runs ``expected``, and every worker kind has a live worker at ``expected``."""
    try:
        running = _check(client.get("/health/live")).get("version")
        report: dict[str, dict[str, int]] = _check(client.get("/health/workers"))["workers"]
    except (CliError, httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [("version", False, f"no version report: {exc}")]
    if running == expected:
        version = ("version", True, f"API runs {expected}")
    else:
        version = ("version", False, f"API runs {running!r}, expected {expected!r}")
    missing = [kind for kind in WORKER_KINDS if not report.get(kind, {}).get(expected)]
    if missing:
        seen = "; ".join(f"{kind}: {_counts(report.get(kind, {}))}" for kind in missing)
        detail = f"no live {' or '.join(missing)} at {expected} (live: {seen})"
    else:
        detail = ", ".join(f"{kind} x{report[kind][expected]}" for kind in WORKER_KINDS)
    return [version, ("workers", not missing, detail)]


def _counts(versions: dict[str, int]) -> str:
    return ", ".join(f"{version} x{count}" for version, count in versions.items()) or "none"


def smoke(args: argparse.Namespace) -> int:
    """Health, catalog and (with credentials) sign-in against any deployed API; with
    ``--expect-version``, also that the API and every worker kind run that version."""
    checks: list[tuple[str, bool, str]] = []
    with _client(args) as client:
        for name, path in SMOKE_CHECKS:
            try:
                response = client.get(path)
                checks.append((name, response.status_code == 200, str(response.status_code)))
            except httpx.HTTPError as exc:
                checks.append((name, False, str(exc)))
        if args.expect_version:
            checks += _version_checks(client, args.expect_version)
        if args.email and args.password:
            response = client.post(
                "/auth/sign-in", json={"email": args.email, "password": args.password}
            )
            checks.append(("sign-in", response.status_code == 200, str(response.status_code)))
    for name, ok, detail in checks:
        # One line per check, never wrapped: the deploy log shows what failed in one line.
        mark = "[green]ok  [/green]" if ok else "[red]FAIL[/red]"
        console.print(f"{mark} {name:<11} {detail}", soft_wrap=True, markup=True, highlight=False)
    return 0 if all(ok for _, ok, _ in checks) else 1


def _connection_options(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """Where the API is and how to sign in. Accepted before or after the command: a command's
    copy has no defaults, so it never overwrites what was given before the command."""
    for option in ("--base-url", "--token", "--email", "--password"):
        name = option.removeprefix("--").replace("-", "_")
        parser.add_argument(option, default=defaults.get(name, argparse.SUPPRESS))


def build_parser() -> argparse.ArgumentParser:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="momentum", description="Momentum command line")
    _connection_options(
        parser,
        {
            "base_url": os.environ.get("MOMENTUM_API_URL", settings.public_url),
            "token": os.environ.get("MOMENTUM_TOKEN"),
            "email": None,
            "password": None,
        },
    )
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="generate a course as a DRAFT")
    _connection_options(gen, {})
    gen.add_argument("topic")
    gen.add_argument("--days", type=int, choices=(7, 14, 21), default=7)
    gen.add_argument("--audience")
    gen.add_argument("--level", choices=("beginner", "intermediate", "advanced"))
    gen.add_argument("--tone")
    gen.add_argument("--language")
    gen.add_argument("--model")
    gen.add_argument("--reference", action="append", help="a reference document id (repeatable)")
    gen.add_argument("--idempotency-key")
    gen.add_argument("--wait", action="store_true", help="follow the job until it ends")
    gen.add_argument("--poll", type=float, default=1.0, help="seconds between status reads")
    gen.set_defaults(run=generate)

    smoke_cmd = commands.add_parser("smoke", help="check a deployed API: health, catalog, sign-in")
    _connection_options(smoke_cmd, {})
    smoke_cmd.add_argument(
        "--expect-version",
        help="fail unless the API and a live worker of each kind run this version (image tag)",
    )
    smoke_cmd.set_defaults(run=smoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (CliError, httpx.HTTPError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
