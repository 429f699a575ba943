"""The dino/clip embedders: the worker run with another Python, real processes, no download.

The tiny-model tests need a Python with torch and transformers: TEST_TORCH_PYTHON (what `make
test-models` sets, pointing at the .venv-models it builds; the conftest fixture strips LORA_* and
INVOKE_* variables, not this one) or the kohya venv (kohya/.venv/bin/python). They build a randomly
initialised model from a config in a temp folder and are skipped where no such Python exists (CI
has none). The offline paths run the real
worker with this project's Python, which has neither.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from scripts.imaging.embed import cosine, make_embedder
from scripts.imaging.model_embed import EmbedderUnavailable, WorkerEmbedder
from tests.paths import ROOT

TINY = {
    "dino": "from transformers import Dinov2Config, Dinov2Model, BitImageProcessor\n"
            "Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,"
            " image_size=32, patch_size=8)).save_pretrained(out)\n"
            "BitImageProcessor(size={'shortest_edge': 32}, crop_size={'height': 32, 'width': 32})"
            ".save_pretrained(out)\n",
    "clip": "from transformers import CLIPConfig, CLIPModel, CLIPImageProcessor\n"
            "CLIPModel(CLIPConfig(text_config={'hidden_size': 32, 'num_hidden_layers': 1, 'num_attention_heads': 2,"
            " 'intermediate_size': 64}, vision_config={'hidden_size': 32, 'num_hidden_layers': 1,"
            " 'num_attention_heads': 2, 'intermediate_size': 64, 'image_size': 32, 'patch_size': 8},"
            " projection_dim=16)).save_pretrained(out)\n"
            "CLIPImageProcessor(size={'shortest_edge': 32}, crop_size={'height': 32, 'width': 32})"
            ".save_pretrained(out)\n"
            "import json, os\nfrom transformers import CLIPTokenizer\n"
            "json.dump({'<|startoftext|>': 0, '<|endoftext|>': 1, 'a</w>': 2, 'b</w>': 3, 'a': 4, 'b': 5},"
            " open(os.path.join(out, 'v.json'), 'w'))\n"
            "open(os.path.join(out, 'm.txt'), 'w').write('#version: 0.2\\n')\n"
            "CLIPTokenizer(vocab_file=os.path.join(out, 'v.json'), merges_file=os.path.join(out, 'm.txt'))"
            ".save_pretrained(out)\n",
}


def python_with_torch() -> Path | None:
    for candidate in (os.environ.get("TEST_TORCH_PYTHON"), ROOT / "kohya" / ".venv" / "bin" / "python"):
        if candidate and Path(candidate).exists():
            probe = subprocess.run([str(candidate), "-c", "import torch, transformers"], capture_output=True,
                                   check=False)
            if probe.returncode == 0:
                return Path(candidate)
    return None


def pictures(folder: Path) -> list[Path]:
    paths = []
    for i, colour in enumerate([(250, 120, 20), (20, 40, 200), (250, 120, 20)]):
        path = folder / f"p{i}.png"
        Image.new("RGB", (48, 48), colour).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("kind", ["dino", "clip"])
def test_a_tiny_random_model_embeds_through_the_worker(kind: str, tmp_path: Path) -> None:
    python = python_with_torch()
    if python is None:
        pytest.skip("no Python with torch and transformers (make test-models, or the kohya venv)")
    model = tmp_path / "model"
    subprocess.run([str(python), "-c", f"out = {str(model)!r}\n" + TINY[kind]], check=True, capture_output=True)
    embedder = make_embedder(kind, python, model)
    assert embedder.name.startswith(f"{kind}-")
    a, b, a_again = embedder.vectors(pictures(tmp_path))
    assert len(a) == (32 if kind == "dino" else 16)
    assert cosine(a, a_again) == pytest.approx(1.0) and a != b
    if kind == "clip":  # text features in the image features' space, cached by text
        from scripts.imaging.embed import FeatureCache, text_features

        cache = FeatureCache(None, embedder.name)
        texts = text_features(["a b", "b"], embedder, cache)
        assert [len(v) for v in texts.values()] == [16, 16]  # (the tiny vocabulary tokenises both alike)
        assert -1 <= cosine(a, texts["a b"]) <= 1
        assert WorkerEmbedder("clip", tmp_path / "gone", model).name == embedder.name  # same model, same cache
        assert text_features(["b"], WorkerEmbedder("clip", tmp_path / "gone", model), cache) == {"b": texts["b"]}
    else:
        assert embedder.text_vectors(["a"]) == []  # type: ignore[attr-defined]


def test_without_torch_the_worker_says_so_in_one_line_naming_stats(tmp_path: Path) -> None:
    embedder = WorkerEmbedder("dino", Path(sys.executable))  # this project's venv: no torch, no transformers
    with pytest.raises(EmbedderUnavailable) as caught:
        embedder.vectors(pictures(tmp_path))
    message = str(caught.value)
    assert "\n" not in message and "torch" in message and message.endswith("use --embedder stats.")


def test_a_missing_kohya_python_is_named(tmp_path: Path) -> None:
    with pytest.raises(EmbedderUnavailable, match=r"does not exist; run invoke setup") as caught:
        WorkerEmbedder("clip", tmp_path / "nope" / "python").vectors(pictures(tmp_path))
    assert "--embedder stats" in str(caught.value)
    assert WorkerEmbedder("clip", tmp_path / "nope").vectors([]) == []  # nothing to embed: nothing run


def test_the_worker_refuses_missing_weights_offline_in_one_line(tmp_path: Path) -> None:
    python = python_with_torch()
    if python is None:
        pytest.skip("no Python with torch and transformers (make test-models, or the kohya venv)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([str(python), str(ROOT / "scripts" / "imaging" / "embed_worker.py"), "--model", "dino"],
                          input='{"images": []}', capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 3 and done.stderr.strip().endswith("or use --embedder stats.")
    assert len(done.stderr.strip().splitlines()) == 1
