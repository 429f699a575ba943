"""Model-based embedders (`dino`, `clip`): the project venv asks the kohya venv's Python for vectors.

Scoring runs in the project venv and needs no torch: `WorkerEmbedder.vectors` runs
`embed_worker.py` (beside this file) with the kohya venv's Python, image paths in and vectors out
as JSON. When that Python, torch, transformers or the weights are missing, it raises
`EmbedderUnavailable` with one line naming `--embedder stats`.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

WORKER = Path(__file__).with_name("embed_worker.py")
MODEL_EMBEDDERS = ("dino", "clip")
UNAVAILABLE = 3


class EmbedderUnavailable(Exception):
    """The model embedder cannot run here; the message is one line naming --embedder stats."""


class WorkerEmbedder:
    def __init__(self, kind: str, python: Path, model_path: Path | None = None) -> None:
        self.kind, self.python, self.model_path = kind, python, model_path
        # vectors from another model folder are another embedding space: another cache
        suffix = hashlib.sha256(str(model_path.resolve()).encode()).hexdigest()[:8] if model_path else ""
        self.name = f"{kind}-{suffix}" if suffix else kind

    def check(self) -> None:
        """Load the model once with no images: fails fast, before anything is rendered for it."""
        self._run([])

    def vectors(self, paths: Sequence[Path]) -> list[tuple[float, ...]]:
        return self._run(paths)[0] if paths else []

    def text_vectors(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        """CLIP only: text features in the image features' space (empty for other models)."""
        return self._run([], texts)[1] if texts and self.kind == "clip" else []

    def _run(self, paths: Sequence[Path], texts: Sequence[str] = ()) -> tuple[list[tuple[float, ...]],
                                                                             list[tuple[float, ...]]]:
        if not self.python.exists():
            raise EmbedderUnavailable(f"--embedder {self.kind} runs in the kohya venv, and {self.python} does not "
                                      f"exist; run invoke setup (or pass --kohya-python), or use --embedder stats.")
        command = [str(self.python), str(WORKER), "--model", self.kind]
        if self.model_path is not None:
            command += ["--path", str(self.model_path)]
        done = subprocess.run(command, input=json.dumps({"images": [str(p) for p in paths], "texts": list(texts)}),
                              capture_output=True, text=True, check=False)
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        if done.returncode == UNAVAILABLE:
            raise EmbedderUnavailable(last)
        if done.returncode:
            raise EmbedderUnavailable(f"The {self.kind} embedder failed in {self.python} ({last}); "
                                      f"use --embedder stats.")
        try:
            answer = json.loads(done.stdout)
            vectors, text_vectors = answer["vectors"], answer.get("texts") or []
        except (ValueError, KeyError, TypeError):
            raise EmbedderUnavailable(f"The {self.kind} embedder answered something other than vectors; "
                                      f"use --embedder stats.") from None
        if len(vectors) != len(paths):
            raise EmbedderUnavailable(f"The {self.kind} embedder answered {len(vectors)} vectors for {len(paths)} "
                                      f"images; use --embedder stats.")
        return [tuple(float(x) for x in v) for v in vectors], [tuple(float(x) for x in v) for v in text_vectors]
