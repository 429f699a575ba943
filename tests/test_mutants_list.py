"""`make mutants` refuses to start when one entry's exact old text no longer occurs once in its file (code
moved or reworded); this keeps that list in step with the code in every `make test`, which runs no mutant."""
from __future__ import annotations

from tests.paths import ROOT
from tools.mutants import MUTATIONS


def test_every_mutant_still_finds_its_code_once_and_names_existing_tests() -> None:
    problems = []
    for mutation in MUTATIONS:
        text = (ROOT / mutation.file).read_text(encoding="utf-8")
        problems += [f"{mutation.name}: {mutation.file} holds {old.strip()[:50]!r} {text.count(old)} times"
                     for old, _ in mutation.edits if text.count(old) != 1]
        problems += [f"{mutation.name}: no test file {test}" for test in mutation.tests
                     if not (ROOT / test.split("::")[0]).exists()]
    assert not problems, "\n".join(problems)
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)  # names are how --only picks them
