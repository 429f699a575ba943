"""ComfyUI's failures as exceptions whose message is one plain-words paragraph, and the helpers
that put ComfyUI's own error answers (a `/prompt` 400 body, a `/history` status) into words."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ComfyError(Exception):
    """Base class: the message is one plain-words paragraph."""


class ServerError(ComfyError):
    """A server did not answer, timed out, or answered 5xx (transient; may be retried elsewhere)."""


class ServerUnreachable(ServerError):
    """Nothing answered at the server's address (connection refused, no such host): ComfyUI is not
    running there, or the URL is wrong. `.url` is the server."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(message)


class PromptRejected(ComfyError):
    """`POST /prompt` answered 400: ComfyUI's error.message plus each node error, in plain words."""

    def __init__(self, url: str, body: Any, status: int = 400) -> None:
        self.url = url
        self.body = body
        self.status = status
        super().__init__(describe_rejection(body, url, partial=status == 200))


class CheckpointMissing(ComfyError):
    """The checkpoint is not installed on a server; `.available` lists what is."""

    def __init__(self, url: str, name: str, available: Sequence[str]) -> None:
        self.url, self.name, self.available = url, name, list(available)
        listed = ", ".join(self.available) if self.available else "none at all"
        super().__init__(
            f"The checkpoint {name!r} is not installed on the ComfyUI server {url} "
            f"(installed checkpoints: {listed}). Put the file in ComfyUI's models/checkpoints "
            f"folder, or set [regularization] checkpoint in the character table to one of these."
        )


class UnsafeFilename(ComfyError):
    """The server returned an output name with a path separator or `..`; it is never used."""


class OutputUnavailable(ComfyError):
    """`GET /view` answered 4xx for an output the history listed (deleted, moved, or refused):
    that job fails or is retried; the server itself is fine."""


class PromptLost(ComfyError):
    """Neither `/history` nor `/queue` knows the prompt (history forgotten or server restarted)."""


class JobTimeout(ComfyError):
    """A prompt did not finish within the per-job timeout."""


class NoServer(ComfyError):
    """No server of the list answered."""


# --- plain-words rendering --------------------------------------------------------------------

def describe_rejection(body: Any, url: str = "", *, partial: bool = False) -> str:
    """ComfyUI's 400 body from `/prompt` as one paragraph: error.message, then every node error.

    `partial`: a 200 whose `node_errors` is not empty (ComfyUI queued only the outputs that
    passed validation); that job alone failed and the batch went on.
    """
    where = f" at {url}" if url else ""
    if partial:
        return " ".join([f"ComfyUI{where} accepted only part of the workflow: some of its outputs "
                         f"failed validation and were left out.",
                         *describe_node_errors(body.get("node_errors") if isinstance(body, dict) else None),
                         "This job failed and is not retried (what ComfyUI queued of it was deleted or "
                         "interrupted); the other jobs went on. Fix the node named above and run this "
                         "job again."])
    if not isinstance(body, dict):
        return f"ComfyUI{where} rejected the workflow: {str(body).strip()[:500]}."
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    message = str(error.get("message") or body.get("error") or "no message").strip()
    details = str(error.get("details") or "").strip()
    parts = [f"ComfyUI{where} rejected the workflow: {message}" + (f" ({details})" if details else "") + "."]
    parts += describe_node_errors(body.get("node_errors") or {})
    parts.append("Every other job would fail the same way, so the batch stopped; fix the value named "
                 "above (character table or settings) and run again.")
    return " ".join(parts)


def describe_node_errors(node_errors: Any) -> list[str]:
    """One sentence per node error: node id, class, message and details."""
    lines: list[str] = []
    if not isinstance(node_errors, dict):
        return lines
    for node_id, entry in node_errors.items():
        if not isinstance(entry, dict):
            continue
        kind = entry.get("class_type", "?")
        for item in entry.get("errors") or []:
            if not isinstance(item, dict):
                continue
            text = str(item.get("message") or item.get("type") or "error").strip()
            details = str(item.get("details") or "").strip()
            lines.append(f"Node {node_id} ({kind}): {text}" + (f": {details}" if details else "") + ".")
    return lines


def run_error(entry: dict[str, Any]) -> tuple[str, str]:
    """('success'|'error'|'interrupted', plain message) from a `/history/{id}` entry.

    A failed and an interrupted prompt both show `status_str: "error"`; the last status
    message (`execution_error` or `execution_interrupted`) tells them apart.
    """
    status = entry.get("status") or {}
    if status.get("status_str") == "success" and status.get("completed", True):
        return "success", ""
    for kind, data in reversed(status.get("messages") or []):
        if kind == "execution_interrupted":
            return "interrupted", f"interrupted at node {data.get('node_id')} ({data.get('node_type')})"
        if kind == "execution_error":
            return "error", error_text(data)
    return "error", f"ComfyUI reported status {status.get('status_str')!r} without an error message"


def error_text(data: dict[str, Any]) -> str:
    message = " ".join(str(data.get("exception_message") or "").split())
    return (f"node {data.get('node_id')} ({data.get('node_type')}) raised "
            f"{data.get('exception_type', 'an error')}: {message[:300]}")




def no_server_message(urls: Sequence[str], problems: Sequence[str]) -> str:
    problems = [problem.rstrip(".") for problem in problems]  # each is a sentence; here they sit in brackets
    if problems and all("that is not a ComfyUI server" in problem for problem in problems):
        # something answered: "start ComfyUI on that machine" would send the person the wrong way
        return (f"No ComfyUI server at {', '.join(urls)}: {'; '.join(problems)}, or pass another with --server URL "
                f"(repeatable); nothing was generated.")
    return (f"No ComfyUI server answered ({'; '.join(problems) or ', '.join(urls)}). Start ComfyUI "
            f"(python main.py --listen) on that machine, check the URL and port, or pass another "
            f"with --server URL (repeatable); nothing was generated.")
