"""`Timeouts.but`: the one way callers (verbs, tests) change a limit without restating the others."""
from __future__ import annotations

import dataclasses

import pytest

from scripts.comfyui.timeouts import Timeouts


def test_but_changes_only_the_named_fields_and_none_keeps_a_field() -> None:
    base = Timeouts(request=7.0, job=90.0, quiet=3.0)
    changed = base.but(job=12.0, quiet=None, dead_after=0.25)
    assert (changed.job, changed.dead_after) == (12.0, 0.25)
    assert (changed.request, changed.quiet) == (7.0, 3.0)
    assert (base.job, base.dead_after) == (90.0, Timeouts().dead_after)  # the original is untouched


def test_timeouts_are_frozen_and_an_unknown_name_is_refused() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timeouts().job = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Timeouts().but(per_job=1.0)
