"""Every ComfyUI time limit, as named fields of one frozen object with one default each.

The endpoint functions take one call's limit as a number (`timeout=`); `ComfyServer`, `open_servers`
and `run_jobs` take the whole `Timeouts`; the verbs build theirs from their flags with `but(...)`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `view`, `cancel` and `abandon` are bounds next to `request`: a `/view` download may
    take at least `view` and at least `request`; cancelling and abandoning take at most the smaller
    of theirs and `request` (so a short `request`, as in tests, keeps them short too)."""
    request: float = 30.0     # one HTTP call (and a websocket connect)
    view: float = 60.0        # one `GET /view` download (at least `request`)
    job: float = 600.0        # one prompt, from POST to its `/history` entry, before it is retried
    quiet: float = 5.0        # websocket silence before `/history` + `/queue` are polled
    dead_after: float = 10.0  # failed calls / refused sockets for this long: the server is given up
    cancel: float = 5.0       # each call that deletes or interrupts our prompts (at most `request`)
    abandon: float = 2.0      # the one delete sent to a server given up on (at most `request`)
    confirm: float = 5.0      # each call deploy makes to see that a server lists the new file
    probe: float = 1.5        # "does it answer at all" checks (status, setup)

    def but(self, **changes: float | None) -> Timeouts:
        """A copy with the named fields changed; a None value leaves that field as it is."""
        return dataclasses.replace(self, **{name: value for name, value in changes.items() if value is not None})


DEFAULT_TIMEOUTS = Timeouts()
