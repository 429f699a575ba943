"""Image embeddings behind one interface, with a cache keyed by the image file's hash.

An `Embedder` turns image files into vectors whose cosine similarity says how alike two images
look. `stats` needs no model and is always available (used in CI): a joint RGB colour histogram
(4 levels per channel, square-rooted so cosine is the Hellinger affinity) and an 8x8 colour
thumbnail (mean removed), each block scaled so it weighs `HIST_WEIGHT` / `THUMB_WEIGHT` in the
cosine. It sees palette and layout, not shapes: it cannot tell a bracer on the right arm from one
on the left. Model-based embedders (`dino`, `clip`) plug in behind the same `vectors` call.

`features` returns, per file, the vector plus the perceptual hash and the measures of
`scripts.imaging.measure`; `FeatureCache` keeps them in one JSON file per embedder, keyed by
sha256 of the file bytes, so a re-run only reads hashes.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from scripts.common.atomic import write_text
from scripts.imaging.measure import Measures, measures, phash

Vector = tuple[float, ...]
HIST_LEVELS = 4
THUMB_SIDE = 8
HIST_SIDE = 64
HIST_WEIGHT = 0.6
THUMB_WEIGHT = 0.4
CACHE_VERSION = 1


class Embedder(Protocol):
    name: str

    def vectors(self, paths: Sequence[Path]) -> list[Vector]:
        """One vector per file, in order."""
        ...


def normalise(values: Sequence[float], weight: float = 1.0) -> Vector:
    norm = math.sqrt(sum(v * v for v in values))
    if norm == 0:
        return tuple(0.0 for _ in values)
    scale = math.sqrt(weight) / norm
    return tuple(v * scale for v in values)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def stats_vector(image: Image.Image) -> Vector:
    rgb = image.convert("RGB")
    shift = 8 - int(math.log2(HIST_LEVELS))
    bins = [0.0] * HIST_LEVELS ** 3
    small = rgb.resize((HIST_SIDE, HIST_SIDE), Image.Resampling.BOX)
    data = small.tobytes()
    for r, g, b in zip(data[0::3], data[1::3], data[2::3], strict=True):
        bins[((r >> shift) * HIST_LEVELS + (g >> shift)) * HIST_LEVELS + (b >> shift)] += 1
    hist = normalise([math.sqrt(v) for v in bins], HIST_WEIGHT)
    thumb = [v / 255.0 for v in rgb.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()]
    mean = sum(thumb) / len(thumb)
    return hist + normalise([v - mean for v in thumb], THUMB_WEIGHT)


class StatsEmbedder:
    """Colour histogram + small thumbnail; no model, no download."""

    name = "stats"

    def vectors(self, paths: Sequence[Path]) -> list[Vector]:
        out = []
        for path in paths:
            with Image.open(path) as image:
                out.append(stats_vector(image))
        return out


@dataclass(frozen=True)
class Features:
    vector: Vector
    phash: int
    measures: Measures


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FeatureCache:
    """sha256 of an image file -> its Features, for one embedder, in one JSON file."""

    def __init__(self, path: Path | None, embedder: str) -> None:
        self.path, self.embedder = path, embedder
        self.items: dict[str, Features] = {}
        self.texts: dict[str, Vector] = {}  # prompt text -> text vector (clip)
        self.changed = False
        if path is None or not path.is_file():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != CACHE_VERSION or data.get("embedder") != embedder:
                return
            for key, item in data["items"].items():
                self.items[key] = Features(tuple(item["vector"]), int(item["phash"], 16), Measures(**item["measures"]))
            self.texts = {str(text): tuple(vector) for text, vector in data.get("texts", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.items, self.texts = {}, {}  # a damaged cache is rebuilt, never trusted

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        items = {key: {"vector": list(f.vector), "phash": f"{f.phash:016x}",
                       "measures": asdict(f.measures)} for key, f in self.items.items()}
        write_text(self.path, json.dumps({"version": CACHE_VERSION, "embedder": self.embedder, "items": items,
                                          "texts": {t: list(v) for t, v in self.texts.items()}}) + "\n")
        self.changed = False


def features(paths: Sequence[Path], embedder: Embedder, cache: FeatureCache | None = None) -> dict[Path, Features]:
    """Features of every file; files whose hash the cache knows are not opened again."""
    cache = cache or FeatureCache(None, embedder.name)
    hashes = {path: file_hash(path) for path in dict.fromkeys(paths)}
    todo = list({digest: path for path, digest in hashes.items() if digest not in cache.items}.values())
    if todo:
        vectors = embedder.vectors(todo)
        for path, vector in zip(todo, vectors, strict=True):
            with Image.open(path) as image:
                # rounded as the cache stores them, so a first run and a cached re-run score alike
                cache.items[hashes[path]] = Features(tuple(round(v, 6) for v in vector), phash(image),
                                                     measures(image))
        cache.changed = True
    return {path: cache.items[digest] for path, digest in hashes.items()}


def text_features(texts: Sequence[str], embedder: Embedder, cache: FeatureCache) -> dict[str, Vector]:
    """Text vectors in the image vectors' space, for embedders that have them (clip); else {}."""
    text_vectors = getattr(embedder, "text_vectors", None)
    if text_vectors is None or getattr(embedder, "kind", "") != "clip":
        return {}
    todo = [t for t in dict.fromkeys(texts) if t not in cache.texts]
    if todo:
        for text, vector in zip(todo, text_vectors(todo), strict=True):
            cache.texts[text] = tuple(round(v, 6) for v in vector)
        cache.changed = True
    return {t: cache.texts[t] for t in texts}


def make_embedder(name: str, python: Path | None = None, model_path: Path | None = None) -> Embedder:
    """`stats`, or a model embedder (`dino`, `clip`) run with `python` (the kohya venv's)."""
    if name == "stats":
        return StatsEmbedder()
    from scripts.imaging.model_embed import MODEL_EMBEDDERS, WorkerEmbedder
    if name in MODEL_EMBEDDERS and python is not None:
        return WorkerEmbedder(name, python, model_path)
    raise ValueError(f"unknown embedder {name!r}")
