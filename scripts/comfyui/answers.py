"""Say what answered when a URL answers but is not ComfyUI (a web page, another API, a proxy's error).

ComfyUI answers every endpoint we call with JSON; an HTML page or plain text means the URL or port
points at something else. The description names it in one line instead of printing the page.
"""
from __future__ import annotations

import re
from typing import Any

TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def describe_body(body: Any) -> str:
    """A one-line description of a non-JSON answer: an HTML page and its title, or the text's start."""
    data = body if isinstance(body, bytes) else str(body).encode("utf-8", "replace")
    head = data.lstrip()[:4096]
    if head[:15].lower().startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512].lower():
        match = TITLE.search(head)
        title = " ".join(match.group(1).decode("utf-8", "replace").split()) if match else ""
        return f"an HTML page{f' titled {title!r}' if title else ''}"
    text = " ".join(head[:120].decode("utf-8", "replace").split())
    return f"the text {text!r}" if text else "an empty body"


def is_json_answer(body: Any) -> bool:
    """True for what `_request` returns after parsing JSON (a dict, list, number or None)."""
    return not isinstance(body, (bytes, str))


def not_comfyui_message(url: str, what: str, status: int, body: Any) -> str:
    return (f"{url} answered {what} with {status} and {describe_body(body)}: that is not a ComfyUI server "
            f"(ComfyUI answers with JSON). Check the URL and port (ComfyUI's default is 8188)")
