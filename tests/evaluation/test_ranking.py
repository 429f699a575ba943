"""Ranking synthetic runs with known answers: under-trained, good, overtrained, leaking."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.evaluation import ranking
from scripts.evaluation.scores import References, Sample, Scores, score
from scripts.imaging.embed import Features, StatsEmbedder, features
from tests.evaluation import synthetic

BEHAVIOURS = {"step00000200": "under", "step00000400": "good", "step00000600": "overtrained",
              "step00000800": "leaking"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[References, dict[str, list[Sample]]]:
    folder = tmp_path_factory.mktemp("synthetic")
    files = synthetic.write_run(folder, {**BEHAVIOURS, "step00001000": "good"})
    crops = synthetic.write_references(folder / "refs")
    found = features([*crops, *(p for row in files.values() for p in row.values())], StatsEmbedder())
    refs = References([found[p] for p in crops], [found[p] for p in crops],
                      {key: found[path] for key, path in files["base"].items()})
    samples = {row: [Sample(*key, found[path]) for key, path in row_files.items()]
               for row, row_files in files.items() if row != "base"}
    return refs, samples


def candidates(samples: dict[str, list[Sample]], rows: list[str]) -> list[ranking.Candidate]:
    return [ranking.Candidate(row, f"step {int(row[4:])}", int(row[4:]), samples[row]) for row in rows]


def test_good_beats_under_trained_and_overtrained_and_leaking_are_demoted_for_their_reason(run) -> None:
    refs, samples = run
    ranked = ranking.rank(candidates(samples, list(BEHAVIOURS)), refs)
    by_key = {r.key: r for r in ranked}
    assert [r.key for r in ranked[:2]] == ["step00000400", "step00000200"]
    assert {r.key for r in ranked if r.demoted} == {"step00000600", "step00000800"}
    assert [r.key for r in ranking.proposals(ranked)] == ["step00000400", "step00000200"]

    good, under = by_key["step00000400"].scores, by_key["step00000200"].scores
    assert good.identity > 0.15 > abs(under.identity)  # the trigger shows the character / changes nothing
    assert good.leakage < 0.05 and under.leakage < 0.05 and good.memorised == 0
    assert "under-trained" in by_key["step00000200"].reason and "demoted" not in by_key["step00000400"].reason
    assert by_key["step00000400"].reason.startswith("step 400: identity ")

    over = by_key["step00000600"]
    assert over.scores.memorised >= over.scores.renders // 2
    assert any(p.startswith("memorised:") for p in over.problems)
    assert any(p.startswith("damage: saturation") for p in over.problems)
    assert over.scores.damage.saturation > 1.5 and over.scores.damage.clipped > 2

    leaking = by_key["step00000800"]
    assert [p.split(":")[0] for p in leaking.problems] == ["leaks"]  # neither damage nor copies
    assert leaking.scores.leakage > 0.2 and leaking.scores.memorised == 0
    assert "demoted: leaks: no-trigger renders moved" in leaking.reason


def test_identity_is_zero_for_the_baseline_itself_and_near_one_for_the_references(run) -> None:
    refs, _ = run
    as_baseline = [Sample(k[0], k[1], k[2], f) for k, f in refs.baseline.items()]
    assert score(as_baseline, refs).identity == pytest.approx(0.0, abs=1e-9)
    assert score(as_baseline, refs).leakage == pytest.approx(0.0, abs=1e-9)
    # trigger renders that are the references themselves score about as close as they are to each other
    crop_like = [Sample("trigger", "details", i, refs.crops[i % len(refs.crops)]) for i in range(4)]
    assert 0.9 < score(crop_like, refs).identity < 1.4


def test_two_equal_checkpoints_go_to_the_earlier_step(run) -> None:
    refs, samples = run
    ranked = ranking.rank(candidates(samples, ["step00001000", "step00000400"]), refs)
    assert ranked[0].total == pytest.approx(ranked[1].total, abs=0.02)
    assert [r.step for r in ranked] == [400, 1000]


def _ranked(step: int, total: float, spread: float) -> ranking.Ranked:
    empty = Scores(0.0, 0.0, 0, 0, None, {}, {})  # type: ignore[arg-type]
    return ranking.Ranked(f"step{step:08d}", f"step {step}", step, empty, total, spread, spread)


def test_a_better_score_within_the_bootstrap_spread_gives_way_to_the_earlier_step() -> None:
    late, mid, early = _ranked(800, 0.50, 0.05), _ranked(600, 0.47, 0.04), _ranked(400, 0.30, 0.02)
    assert [r.step for r in ranking.order([late, mid, early])] == [600, 800, 400]
    clear = _ranked(800, 0.60, 0.05)  # beyond the spread: the better one stays first
    assert [r.step for r in ranking.order([clear, mid, early])] == [800, 600, 400]


def test_bootstrap_spread_grows_with_disagreeing_seeds() -> None:
    from scripts.evaluation.scores import bootstrap
    steady = Scores(0.5, 0.0, 0, 4, None, {("trigger", "a", i): 0.5 for i in range(4)}, {})  # type: ignore[arg-type]
    shaky = Scores(0.5, 0.0, 0, 4, None, {("trigger", "a", i): v for i, v in enumerate([0.1, 0.9, 0.2, 0.8])},
                   {})  # type: ignore[arg-type]
    assert bootstrap(steady, 0.75) == (0.0, 0.0)
    ident, total = bootstrap(shaky, 0.75)
    assert 0.1 < ident < 0.3 and total == pytest.approx(0.75 * ident, rel=1e-6)


def test_damage_is_measured_against_the_more_lenient_of_baseline_and_references() -> None:
    from scripts.evaluation.scores import damage
    from scripts.imaging.measure import Measures

    def f(sat: float, clip: float = 0.0, detail: float = 0.1) -> Features:
        return Features((1.0,), 0, Measures(sat, clip, detail))

    refs = References([f(0.6)], [], {("trigger", "a", 0): f(0.2)})
    assert damage([Sample("trigger", "a", 0, f(0.6))], refs).saturation == pytest.approx(1.0)  # as colourful as the art
    assert damage([Sample("trigger", "a", 0, f(0.9))], refs).saturation == pytest.approx(1.5)
    lost = damage([Sample("trigger", "a", 0, f(0.6, detail=0.03))], refs)
    assert lost.detail == pytest.approx(0.3) and lost.clipped == pytest.approx(1.0)


def test_scoring_the_synthetic_run_is_fast_and_cached(tmp_path: Path) -> None:
    """A second pass reads the cache instead of the images (the speed target lives in bench/)."""
    from scripts.imaging.embed import FeatureCache

    crops = synthetic.write_references(tmp_path / "refs")
    cache_path = tmp_path / "features-stats.json"
    first = features(crops, StatsEmbedder(), cache := FeatureCache(cache_path, "stats"))
    cache.save()

    class Refuses(StatsEmbedder):
        def vectors(self, paths):  # type: ignore[no-untyped-def]
            raise AssertionError(f"re-embedded {paths}")

    again = features(crops, Refuses(), FeatureCache(cache_path, "stats"))
    assert [again[p].phash for p in crops] == [first[p].phash for p in crops]
    assert [again[p] for p in crops] == [first[p] for p in crops]  # exactly: a re-run scores as the first run


def test_prompt_adherence_is_the_renders_prompt_similarity_over_the_baselines() -> None:
    from scripts.evaluation.scores import adherence
    from scripts.imaging.measure import Measures

    def f(*vector: float) -> Features:
        return Features(vector, 0, Measures(0.5, 0.0, 0.1))

    baseline = {("trigger", "a", 0): f(0.0, 1.0), ("trigger", "a", 1): f(1.0, 1.0)}
    texts = {"a": (1.0, 0.0)}
    samples = [Sample("trigger", "a", 0, f(1.0, 0.0)), Sample("trigger", "a", 1, f(1.0, 1.0)),
               Sample("probe", "a", 0, f(0.0, 1.0))]  # probes are not asked to follow the prompt
    assert adherence(samples, baseline, texts) == pytest.approx((1.0 - 0.0 + 0.0) / 2)
    assert adherence(samples, baseline, {"other": (1.0, 0.0)}) is None
    refs = References([f(1.0, 0.0), f(0.9, 0.1)], [], baseline)
    assert score(samples, refs).adherence is None  # stats/dino: no text space, no column
    assert score(samples, refs, texts=texts).adherence == pytest.approx(0.5)
