"""The stats embedder, perceptual hash and damage measures on real PNGs drawn here."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from scripts.imaging.embed import FeatureCache, StatsEmbedder, cosine, features
from scripts.imaging.measure import hamming, measures, phash


def picture(seed: int, side: int = 96) -> Image.Image:
    image = Image.new("RGB", (side, side), (40 * seed % 200, 90, 160))
    draw = ImageDraw.Draw(image)
    for i in range(5):
        x, y = (seed * 37 + i * 53) % side, (seed * 11 + i * 29) % side
        draw.ellipse([x - 12, y - 12, x + 12, y + 12], fill=((seed * 70 + i * 40) % 256, 200, (i * 60) % 256))
    return image


def test_phash_survives_colour_and_noise_but_not_another_picture() -> None:
    a = picture(1)
    saturated = ImageEnhance.Color(a).enhance(2.0)
    blurred = a.filter(ImageFilter.GaussianBlur(1))
    assert hamming(phash(a), phash(a)) == 0
    assert hamming(phash(a), phash(saturated)) <= 6 and hamming(phash(a), phash(blurred)) <= 6
    assert hamming(phash(a), phash(picture(2))) > 16
    assert 0 < phash(a) < 2**63


def test_measures_see_saturation_clipping_and_lost_detail() -> None:
    a = picture(3)
    plain = measures(a)
    assert measures(ImageEnhance.Color(a).enhance(2.0)).saturation > plain.saturation * 1.2
    assert measures(ImageEnhance.Contrast(a).enhance(4.0)).clipped > plain.clipped + 0.1
    assert measures(a.filter(ImageFilter.GaussianBlur(3))).detail < plain.detail * 0.7
    grey = measures(Image.new("RGB", (10, 10), (128, 128, 128)))
    assert grey.saturation == 0 and grey.clipped == 0 and grey.detail == 0


def test_stats_vectors_put_a_noisy_copy_closer_than_another_picture(tmp_path: Path) -> None:
    a = picture(1)
    paths = [tmp_path / "a.png", tmp_path / "a2.png", tmp_path / "b.png"]
    a.save(paths[0])
    ImageEnhance.Brightness(a).enhance(1.05).save(paths[1])
    picture(5).save(paths[2])
    va, va2, vb = StatsEmbedder().vectors(paths)
    assert cosine(va, va) == 1.0 or abs(cosine(va, va) - 1.0) < 1e-9
    assert cosine(va, va2) > 0.9 > cosine(va, vb)


def test_features_are_cached_by_file_content_not_name(tmp_path: Path) -> None:
    picture(1).save(tmp_path / "a.png")
    (tmp_path / "copy.png").write_bytes((tmp_path / "a.png").read_bytes())
    cache = FeatureCache(tmp_path / "cache.json", "stats")
    calls: list[int] = []

    class Counting(StatsEmbedder):
        def vectors(self, paths):  # type: ignore[no-untyped-def]
            calls.append(len(paths))
            return super().vectors(paths)

    found = features([tmp_path / "a.png", tmp_path / "copy.png"], Counting(), cache)
    assert calls == [1] and found[tmp_path / "a.png"] == found[tmp_path / "copy.png"]
    cache.save()
    (tmp_path / "cache.json").write_text("{not json")
    assert FeatureCache(tmp_path / "cache.json", "stats").items == {}  # damaged: rebuilt, not trusted
    assert FeatureCache(tmp_path / "missing.json", "dino").items == {}
