"""One aiohttp function per ComfyUI endpoint, and the checks on what those endpoints answer.

Each takes `(session, url, ...)` and a `timeout=` for that one call (default from `Timeouts`), and
raises `ServerError` on connection failures, timeouts and 5xx, `PromptRejected` on a 400 from
`/prompt`, `OutputUnavailable` on a 4xx from `/view`. Output references from the server are
checked (`safe_image_ref`) before they are asked for; nothing here touches the disk.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import aiohttp

from scripts.comfyui.answers import is_json_answer, not_comfyui_message
from scripts.comfyui.errors import (
    CheckpointMissing,
    OutputUnavailable,
    PromptRejected,
    ServerError,
    ServerUnreachable,
    UnsafeFilename,
)
from scripts.comfyui.timeouts import DEFAULT_TIMEOUTS

REQUEST = DEFAULT_TIMEOUTS.request


def safe_image_ref(image: Any) -> dict[str, str]:
    """Check an output reference from the server before asking `/view` for it.

    The filename is a plain name (no separator, no `..`); the subfolder has no `..` part and is
    relative. Neither is ever used as a local path: local names are the caller's.
    """
    if not isinstance(image, dict):
        raise UnsafeFilename(f"The server returned an output entry that is not an object: {image!r}.")
    name = str(image.get("filename", ""))
    subfolder = str(image.get("subfolder", "") or "")
    kind = str(image.get("type", "output") or "output")
    bad = (not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name
           or ".." in name)
    parts = subfolder.replace("\\", "/").split("/")
    if bad or subfolder.startswith(("/", "\\")) or ".." in parts or "\x00" in subfolder or ":" in subfolder:
        raise UnsafeFilename(
            f"The server returned the output name {name!r} in subfolder {subfolder!r}, which is not a "
            f"plain file name (it has a path separator or '..'); it was not fetched. Check the "
            f"server's SaveImage node or any custom node rewriting output names.")
    return {"filename": name, "subfolder": subfolder, "type": kind}


def output_images(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The saved images a `/history/{id}` entry lists (type "output"), in node-id order."""
    found: list[dict[str, Any]] = []
    outputs = entry.get("outputs") or {}

    def order(key: str) -> tuple[int, str]:
        return (int(key), key) if key.isdigit() else (1 << 30, key)

    for node_id in sorted(outputs, key=order):
        for image in (outputs[node_id] or {}).get("images") or []:
            if isinstance(image, dict) and image.get("type", "output") == "output":
                found.append(image)
    return found


def combo_choices(info: dict[str, Any], node_class: str, input_name: str) -> list[str]:
    """The allowed values of a combo input in an `/object_info/{class}` answer.

    Handles both shapes ComfyUI uses: `[[choices...], {...}]` and `["COMBO", {"options": [...]}]`.
    """
    node = info.get(node_class) or {}
    inputs = node.get("input") or {}
    for section in ("required", "optional"):
        spec = (inputs.get(section) or {}).get(input_name)
        if not spec:
            continue
        if isinstance(spec[0], list):
            return [str(x) for x in spec[0]]
        if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
            return [str(x) for x in spec[1].get("options") or []]
    return []


# --- one function per endpoint ----------------------------------------------------------------

def _timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


async def _request(session: aiohttp.ClientSession, method: str, url: str, path: str, *,
                   params: dict[str, str] | None = None, body: Any = None, raw: bool = False,
                   timeout: float | None = REQUEST, accept: tuple[int, ...] = (200,)) -> tuple[int, Any]:
    """One HTTP call; connection failures, timeouts and 5xx become `ServerError`."""
    target = url.rstrip("/") + path
    try:
        async with session.request(method, target, params=params,
                                   data=None if body is None else json.dumps(body),
                                   headers={"Content-Type": "application/json"} if body is not None else None,
                                   timeout=_timeout(timeout)) as response:
            data = await response.read()
            if response.status >= 500:
                raise ServerError(f"The ComfyUI server {url} answered {method} {path} with "
                                  f"{response.status} ({data[:200].decode('utf-8', 'replace').strip()}).")
            if raw or response.status not in accept:
                return response.status, data
            try:
                return response.status, json.loads(data) if data else None
            except ValueError:
                return response.status, data.decode("utf-8", "replace")
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        reason = str(error) or type(error).__name__
        message = f"The ComfyUI server {url} did not answer {method} {path} ({reason})."
        if isinstance(error, aiohttp.ClientConnectorError):  # refused or no such host: nothing listens there
            raise ServerUnreachable(url, message) from None
        raise ServerError(message) from None


def _unexpected(url: str, what: str, status: int, body: Any) -> ServerError:
    if not is_json_answer(body):
        return ServerError(not_comfyui_message(url, what, status, body))
    text = body[:200].decode("utf-8", "replace") if isinstance(body, bytes) else str(body)[:200]
    return ServerError(f"The ComfyUI server {url} answered {what} with {status}: {text}")


async def post_prompt(session: aiohttp.ClientSession, url: str, workflow: dict[str, Any], *,
                      client_id: str, prompt_id: str, timeout: float | None = REQUEST) -> dict[str, Any]:
    """`POST /prompt`; returns the 200 body. A 400 raises `PromptRejected`."""
    body = {"prompt": workflow, "client_id": client_id, "prompt_id": prompt_id}
    status, answer = await _request(session, "POST", url, "/prompt", body=body, timeout=timeout, accept=(200, 400))
    if status == 400:
        raise PromptRejected(url, answer)
    if status != 200 or not isinstance(answer, dict):
        raise _unexpected(url, "POST /prompt", status, answer)
    return answer


async def get_history(session: aiohttp.ClientSession, url: str, prompt_id: str, *,
                      timeout: float | None = REQUEST) -> dict[str, Any]:
    """`GET /history/{id}`: the prompt's entry, or `{}` (pending, running, unknown or forgotten)."""
    status, answer = await _request(session, "GET", url, f"/history/{prompt_id}", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise _unexpected(url, "GET /history", status, answer)
    entry = answer.get(prompt_id)
    return entry if isinstance(entry, dict) else {}


async def get_queue(session: aiohttp.ClientSession, url: str, *,
                    timeout: float | None = REQUEST) -> tuple[list[str], list[str]]:
    """`GET /queue`: (running prompt ids, pending prompt ids)."""
    status, answer = await _request(session, "GET", url, "/queue", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise _unexpected(url, "GET /queue", status, answer)

    def ids(items: Any) -> list[str]:
        return [str(item[1]) for item in items or [] if isinstance(item, list) and len(item) > 1]

    return ids(answer.get("queue_running")), ids(answer.get("queue_pending"))


async def delete_queued(session: aiohttp.ClientSession, url: str, prompt_ids: Iterable[str], *,
                        timeout: float | None = REQUEST) -> None:
    """`POST /queue {"delete": [...]}`: remove pending prompts (a running one is not touched)."""
    status, answer = await _request(session, "POST", url, "/queue", body={"delete": list(prompt_ids)}, timeout=timeout)
    if status != 200:
        raise _unexpected(url, "POST /queue", status, answer)


async def interrupt(session: aiohttp.ClientSession, url: str, prompt_id: str | None = None, *,
                    timeout: float | None = REQUEST) -> None:
    """`POST /interrupt`; stops at the next node boundary. Without prompt_id it stops anyone's prompt."""
    body = {"prompt_id": prompt_id} if prompt_id else None
    status, answer = await _request(session, "POST", url, "/interrupt", body=body, timeout=timeout)
    if status != 200:
        raise _unexpected(url, "POST /interrupt", status, answer)


async def view(session: aiohttp.ClientSession, url: str, image: dict[str, Any], *,
               timeout: float | None = DEFAULT_TIMEOUTS.view) -> bytes:
    """`GET /view` for one output reference (checked with `safe_image_ref` first); the bytes."""
    ref = safe_image_ref(image)
    status, data = await _request(session, "GET", url, "/view", params=ref, raw=True, timeout=timeout)
    if 400 <= status < 500:
        raise OutputUnavailable(f"The ComfyUI server {url} answered GET /view for its output "
                                f"{ref['subfolder'] + '/' if ref['subfolder'] else ''}{ref['filename']} with "
                                f"{status} (the file was deleted or moved from its output folder before "
                                f"it was fetched).")
    if status != 200:
        raise _unexpected(url, f"GET /view {ref['filename']}", status, data)
    return data


async def object_info(session: aiohttp.ClientSession, url: str, node_class: str, *,
                      timeout: float | None = REQUEST) -> dict[str, Any]:
    """`GET /object_info/{class}` (an unknown class answers `{}`)."""
    status, answer = await _request(session, "GET", url, f"/object_info/{node_class}", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise _unexpected(url, f"GET /object_info/{node_class}", status, answer)
    return answer


async def view_metadata(session: aiohttp.ClientSession, url: str, folder: str, filename: str, *,
                        timeout: float | None = REQUEST) -> dict[str, Any] | None:
    """`GET /view_metadata/{folder}?filename=...`: the safetensors metadata ComfyUI sees, or None."""
    status, answer = await _request(session, "GET", url, f"/view_metadata/{folder}",
                                    params={"filename": filename}, timeout=timeout, accept=(200,))
    if status == 404:
        return None
    if status != 200:
        raise _unexpected(url, f"GET /view_metadata/{folder}", status, answer)
    return answer if isinstance(answer, dict) else None


async def free(session: aiohttp.ClientSession, url: str, *, unload_models: bool = True,
               free_memory: bool = True, timeout: float | None = REQUEST) -> None:
    """`POST /free`: unload models / free memory (use after replacing a file under the same name)."""
    body = {"unload_models": unload_models, "free_memory": free_memory}
    status, answer = await _request(session, "POST", url, "/free", body=body, timeout=timeout)
    if status != 200:
        raise _unexpected(url, "POST /free", status, answer)


async def installed(session: aiohttp.ClientSession, url: str, node_class: str, input_name: str, *,
                    timeout: float | None = REQUEST) -> list[str]:
    """The choices a loader node offers, e.g. ("CheckpointLoaderSimple", "ckpt_name")."""
    return combo_choices(await object_info(session, url, node_class, timeout=timeout), node_class, input_name)


async def check_checkpoint(session: aiohttp.ClientSession, url: str, name: str, *,
                           timeout: float | None = REQUEST) -> list[str]:
    """Raise `CheckpointMissing` (with the installed list) unless `name` is installed; return the list."""
    names = await installed(session, url, "CheckpointLoaderSimple", "ckpt_name", timeout=timeout)
    if name not in names:
        raise CheckpointMissing(url, name, names)
    return names

