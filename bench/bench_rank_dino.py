"""rank's `dino` embedder on a CPU: ~120 renders through the worker, against the issue's 2-minute target.

No weights can be downloaded here, so the model is DINOv2-small's architecture (hidden 384, 12
layers, 6 heads, patch 14; the preprocessor resizes to 256 and crops 224, as the published
`facebook/dinov2-small` config does) with random weights, written by `save_pretrained` into a temp
folder: the arithmetic per image is the real model's, only the vectors mean nothing. It runs with
a Python that has torch and transformers: TEST_TORCH_PYTHON, else `.venv-models` (`make
test-models` builds it), else the kohya venv; with none it says so and measures nothing.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_rank import SIDE, draw
from scripts.imaging.model_embed import WorkerEmbedder

ROOT = Path(__file__).resolve().parent.parent
IMAGES = 120
TARGET_S = 120.0
DINOV2_SMALL = (
    "from transformers import Dinov2Config, Dinov2Model, BitImageProcessor\n"
    "Dinov2Model(Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,"
    " intermediate_size=1536, image_size=518, patch_size=14)).save_pretrained(out)\n"
    "BitImageProcessor(size={'shortest_edge': 256}, crop_size={'height': 224, 'width': 224},"
    " image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(out)\n"
)


def torch_python() -> Path | None:
    candidates = [os.environ.get("TEST_TORCH_PYTHON"), ROOT / ".venv-models" / "bin" / "python",
                  ROOT / "kohya" / ".venv" / "bin" / "python"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            probe = subprocess.run([str(candidate), "-c", "import torch, transformers"], capture_output=True,
                                   check=False)
            if probe.returncode == 0:
                return Path(candidate)
    return None


def main() -> int:
    python = torch_python()
    if python is None:
        print("  skipped: no Python with torch and transformers (`make test-models` builds .venv-models)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = folder / "dinov2-small-random"
        subprocess.run([str(python), "-c", f"out = {str(model)!r}\n" + DINOV2_SMALL], check=True,
                       capture_output=True)
        images = [draw(folder / f"render{i}.png", f"render{i}") for i in range(IMAGES)]
        embedder = WorkerEmbedder("dino", python, model)
        start = time.perf_counter()
        embedder.check()
        load = time.perf_counter() - start
        start = time.perf_counter()
        vectors = embedder.vectors(images)
        total = time.perf_counter() - start
    print(f"  {len(vectors)} images at {SIDE} px, DINOv2-small architecture ({len(vectors[0])}-d), "
          f"{os.cpu_count()} CPUs, {python}")
    print(f"  worker start + model load: {load:.1f} s; embed all: {total:.1f} s "
          f"({total / len(vectors) * 1000:.0f} ms/image, target < {TARGET_S:.0f} s: "
          f"{'met' if total < TARGET_S else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
