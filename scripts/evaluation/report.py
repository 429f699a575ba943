"""`rank`'s page and record: the proposal, the scores table, the loss plot and every render.

Pure: `render_report` returns the HTML text and `rank_record` the JSON-ready dict; `scripts.rank`
writes them. The page puts the proposal first, then one table row per checkpoint with each score
and what demoted it, then the renders (trigger renders, then leak probes) in a grid of thumbnails
linking to the full images, rows in the same order as the scores, so every claim can be checked
against the pictures on the same page.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from scripts.evaluation.plan import PROBE, TRIGGER, RankPrompt
from scripts.evaluation.ranking import Ranked
from scripts.evaluation.thresholds import Thresholds

THUMB = 128
STYLE = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}"
         "th,td{border:1px solid #ccc;padding:4px;vertical-align:top;font-size:13px}th{background:#eee}"
         "tr.demoted td{color:#888}tr.proposed td{background:#eaf7ea}.missing{background:#ddd;width:128px;"
         "height:128px;display:flex;align-items:center;justify-content:center}ol li{margin:.3em 0}")


def deploy_step(r: Ranked) -> str:
    """What `deploy --step` takes for this checkpoint."""
    return "final" if r.key == "final" else str(int(r.key.removeprefix("step")))


def rank_record(ranked: Sequence[Ranked], proposed: Sequence[Ranked], *, character: str, embedder: str,
                limits: Thresholds, sha256: Mapping[str, str], seeds: int, created_at: str) -> dict[str, Any]:
    def entry(r: Ranked) -> dict[str, Any]:
        s = r.scores
        return {"key": r.key, "label": r.label, "step": deploy_step(r), "trained_steps": r.step,
                "sha256": sha256.get(r.key), "identity": round(s.identity, 4),
                "identity_spread": round(r.identity_spread, 4), "leakage": round(s.leakage, 4),
                "memorised": s.memorised, "renders": s.renders, "damage": {k: round(v, 4) for k, v in
                                                                            asdict(s.damage).items()},
                "adherence": None if s.adherence is None else round(s.adherence, 4), "score": round(r.total, 4),
                "score_spread": round(r.spread, 4), "problems": r.problems, "reason": r.reason}

    return {"version": 1, "character": character, "embedder": embedder, "seeds": seeds, "created_at": created_at,
            "thresholds": asdict(limits), "proposal": [entry(r) for r in proposed],
            "checkpoints": [entry(r) for r in ranked]}


def _scores_table(ranked: Sequence[Ranked], proposed: Sequence[Ranked]) -> list[str]:
    esc = html.escape
    clip = any(r.scores.adherence is not None for r in ranked)
    out = ["<table><tr><th>rank</th><th>checkpoint</th><th>identity (± spread)</th><th>leakage</th>"
           "<th>near-copies</th><th>saturation ×</th><th>clipped ×</th><th>detail ×</th>"
           + ("<th>prompt adherence</th>" if clip else "") + "<th>score (± spread)</th><th>demoted because</th></tr>"]
    for index, r in enumerate(ranked, start=1):
        s, d = r.scores, r.scores.damage
        kind = "demoted" if r.demoted else "proposed" if r in proposed else ""
        out.append(f'<tr class="{kind}"><td>{index}</td><td>{esc(r.label)}</td>'
                   f"<td>{s.identity:.2f} (±{r.identity_spread:.2f})</td><td>{s.leakage:.2f}</td>"
                   f"<td>{s.memorised}/{s.renders}</td><td>{d.saturation:.2f}</td><td>{d.clipped:.2f}</td>"
                   f"<td>{d.detail:.2f}</td>"
                   + (f"<td>{s.adherence:+.3f}</td>" if s.adherence is not None else "<td></td>" if clip else "")
                   + f"<td>{r.total:.3f} (±{r.spread:.3f})</td>"
                   f"<td>{esc('; '.join(r.problems))}</td></tr>")
    out.append("</table>")
    return out


def _renders_table(kind: str, prompts: Sequence[RankPrompt], rows: Sequence[tuple[str, str]],
                   images: Mapping[tuple[str, str], str | None]) -> list[str]:
    esc = html.escape
    columns = [p for p in prompts if p.kind == kind]
    out = ["<table><tr><th></th>" + "".join(
        f"<th>{esc(p.name)}<br>seed {p.prompt.seed}</th>" for p in columns) + "</tr>"]
    for key, label in rows:
        out.append(f"<tr><th>{esc(label)}</th>")
        for p in columns:
            src = images.get((key, p.file_stem))
            if src is None:
                out.append('<td><div class="missing">not rendered</div></td>')
            else:
                out.append(f'<td><a href="{esc(src)}"><img src="{esc(src)}" width="{THUMB}" '
                           f'title="{esc(p.prompt.prompt)}" alt="{esc(label)} / {esc(p.file_stem)}"></a></td>')
        out.append("</tr>")
    out.append("</table>")
    return out


def render_report(title: str, ranked: Sequence[Ranked], proposed: Sequence[Ranked], prompts: Sequence[RankPrompt],
                  rows: Sequence[tuple[str, str]], images: Mapping[tuple[str, str], str | None],
                  plot: str | None, notes: Sequence[str] = (), grid: str | None = None) -> str:
    """The page; `rows` = (row key, label) with the baseline first; `images[(row, stem)]` = relative src."""
    esc = html.escape
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
           f"<style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>", "<h2>Proposal</h2>"]
    if proposed:
        out.append("<ol>" + "".join(f"<li>{esc(r.reason)}</li>" for r in proposed) + "</ol>")
        out.append(f"<p>Deploy the first with <code>invoke deploy --step proposed</code> "
                   f"(= --step {esc(deploy_step(proposed[0]))}). The scores see colour, layout and copies; "
                   f"they cannot see which side a detail is on: check the details row below yourself.</p>")
    else:
        out.append("<p>No checkpoint passed: every one was demoted (see the table). Retrain with fewer steps "
                   "or a lower learning rate, or pick one by eye.</p>")
    out += [f"<p>{esc(note)}</p>" for note in notes]
    if grid:
        out.append(f'<p><img src="{esc(grid)}" alt="each checkpoint at each test prompt, proposals marked"></p>')
    out += ["<h2>Scores</h2>", *_scores_table(ranked, proposed)]
    if plot:
        out += ["<h2>Loss</h2>", f'<p><img src="{esc(plot)}" alt="training loss per step"></p>']
    order = [(k, lbl) for k, lbl in rows if k == "base"] + [(r.key, r.label) for r in ranked]
    out += ["<h2>Trigger renders (test prompts)</h2>", *_renders_table(TRIGGER, prompts, order, images),
            "<h2>Leak probes (trigger removed; plain class prompt)</h2>",
            *_renders_table(PROBE, prompts, order, images), "</body></html>", ""]
    return "\n".join(out)
