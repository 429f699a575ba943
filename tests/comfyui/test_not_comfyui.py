"""A URL that answers but is not ComfyUI: the error says what answered, once, without the page."""
from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import gen_reg
from tests.test_gen_reg import make_character


@pytest.fixture
def web_page() -> Iterator[str]:
    """A real web server on a real port answering every path with its 404 HTML page (like a wrong port)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.RequestHandlerClass.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/nowhere"
    server.shutdown()
    server.server_close()


def test_gen_reg_names_what_answered(tmp_path: Path, web_page: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_character(tmp_path)
    code = gen_reg.main(["--character", "spyke", "--dataset-root", str(folder.parent), "--server", web_page])
    err = capsys.readouterr().err
    assert code != 0 and "nothing was generated" in err
    assert err.count("an HTML page titled 'Error response'") == 1 and err.count("not a ComfyUI server") == 1
    assert "<!DOCTYPE" not in err and "<html" not in err
    # something answered: the message does not say nothing answered, nor send the person to start ComfyUI
    assert f"No ComfyUI server at {web_page}: {web_page} answered" in err
    assert "No ComfyUI server answered" not in err and "Start ComfyUI" not in err
