"""An optional setup step that fails (the tokenizer download offline) is one line, not its traceback."""
from __future__ import annotations

import sys

from scripts import setup
from scripts.trainer.setup_plan import Action


def test_a_failed_optional_step_is_reported_in_one_line(capsys) -> None:
    code = "import socket; socket.getaddrinfo('huggingface.co.invalid', 443)"  # no network: name resolution fails
    error = setup.act(Action("save the CLIP tokenizer", (sys.executable, "-c", code), optional=True))
    out, err = capsys.readouterr()
    assert error is not None and error.startswith("exited 1 (socket.gaierror:")
    assert "Traceback" not in out + err
