"""Image embeddings from a vision model, run with the kohya venv's Python (it has torch and transformers).

A standalone script: it imports nothing from this project, so `scripts.imaging.model_embed` can
run it as `<kohya python> embed_worker.py --model dino|clip [--path FOLDER]` with
`{"images": [paths], "texts": [prompts]}` on stdin (texts: clip only, optional); it answers
`{"model": NAME, "vectors": [[...], ...], "texts": [[...], ...]}` on stdout.
- dino: DINOv2-small (`facebook/dinov2-small`), the pooled CLS token;
- clip: CLIP ViT-B/32 (`openai/clip-vit-base-patch32`), the projected image features.
Weights come from `--path` (a folder `save_pretrained` wrote), else the Hugging Face cache, else
one download into that cache (announced on stderr) unless HF_HUB_OFFLINE is set. When they cannot
be had, or torch/transformers are missing, it prints one line on stderr and exits with 3.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

MODELS = {"dino": ("facebook/dinov2-small", "about 90 MB"), "clip": ("openai/clip-vit-base-patch32", "about 600 MB")}
UNAVAILABLE = 3
BATCH = 16


def unavailable(message: str) -> int:
    print(message, file=sys.stderr)
    return UNAVAILABLE


def load(kind: str, path: str | None, transformers: Any) -> tuple[Any, Any]:
    if kind == "dino":
        processor_class, model_class = transformers.AutoImageProcessor, transformers.AutoModel
    else:
        processor_class, model_class = transformers.CLIPImageProcessor, transformers.CLIPModel
    if path:
        return processor_class.from_pretrained(path), model_class.from_pretrained(path)
    repo, size = MODELS[kind]
    try:
        return (processor_class.from_pretrained(repo, local_files_only=True),
                model_class.from_pretrained(repo, local_files_only=True))
    except OSError:
        if os.environ.get("HF_HUB_OFFLINE"):
            raise
    print(f"downloading {repo} ({size}) into the Hugging Face cache, once", file=sys.stderr)
    return processor_class.from_pretrained(repo), model_class.from_pretrained(repo)


def embed_texts(path: str | None, model: Any, torch: Any, transformers: Any, texts: list[str]) -> list[list[float]]:
    """CLIP text features in the same space as its image features (prompt adherence)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(path or MODELS["clip"][0])
    with torch.no_grad():
        tokens = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        features = model.get_text_features(**tokens)
        features = getattr(features, "pooler_output", features)
    return [[float(x) for x in row] for row in features.reshape(len(texts), -1).tolist()]


def embed(kind: str, processor: Any, model: Any, torch: Any, images: list[Any]) -> list[list[float]]:
    with torch.no_grad():
        inputs = processor(images=images, return_tensors="pt")
        if kind == "dino":
            output = model(**inputs)
            features = output.pooler_output if output.pooler_output is not None else output.last_hidden_state[:, 0]
        else:
            features = model.get_image_features(**inputs)
            features = getattr(features, "pooler_output", features)  # newer transformers wrap it
    return [[float(x) for x in row] for row in features.reshape(len(images), -1).tolist()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--path", default=None, help="a folder with the model's weights and processor config")
    args = parser.parse_args(argv)
    try:
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
        image_module = importlib.import_module("PIL.Image")
    except ImportError as error:
        return unavailable(f"The {args.model} embedder needs torch and transformers in {sys.executable} ({error}); "
                           f"run invoke setup for the kohya venv, or use --embedder stats.")
    try:
        processor, model = load(args.model, args.path, transformers)
    except (OSError, ValueError) as error:
        where = args.path or f"the Hugging Face cache ({MODELS[args.model][0]})"
        return unavailable(f"The {args.model} weights are not in {where} and could not be downloaded "
                           f"({str(error).splitlines()[0]}); pass --embedder-path FOLDER, or use --embedder stats.")
    model.eval()
    request = json.load(sys.stdin)
    paths, texts = request["images"], request.get("texts") or []
    vectors: list[list[float]] = []
    for start in range(0, len(paths), BATCH):
        images = [image_module.open(p).convert("RGB") for p in paths[start:start + BATCH]]
        vectors += embed(args.model, processor, model, torch, images)
    text_vectors = embed_texts(args.path, model, torch, transformers, texts) if texts and args.model == "clip" else []
    json.dump({"model": args.path or MODELS[args.model][0], "vectors": vectors, "texts": text_vectors}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
