"""More entries for `make mutants` (tools/mutants.py): the modules that landed after the first list.

Kept apart so the first list stays as it was; each entry is (name, file, exact old text, new text,
test files), read by tools/mutants.py exactly as its own entries: the old text must occur once.
"""
from __future__ import annotations

RUNS_TESTS = ("tests/trainer/test_runs.py", "tests/test_train_runs.py")
RESUME_TESTS = ("tests/trainer/test_resume_choice.py", "tests/trainer/test_runs.py", "tests/test_train_runs.py",
                "tests/test_train_e2e.py")
OLD_FOLDER_TESTS = ("tests/test_old_folders.py", "tests/test_crop_keeps_work.py")
TOML_TESTS = ("tests/table/test_toml_edit.py", "tests/test_crop_keeps_work.py", "tests/test_boxes.py",
              "tests/test_topup.py")
RANK_TESTS = ("tests/evaluation/test_scores.py", "tests/evaluation/test_ranking.py",
              "tests/evaluation/test_thresholds.py", "tests/test_rank.py")
LOG_TESTS = ("tests/trainer/test_log.py", "tests/trainer/test_log_cause.py", "tests/test_train_e2e.py")
REG_TESTS = ("tests/table/test_reg_count.py", "tests/test_validate.py", "tests/test_validate_boundaries.py",
             "tests/test_validate_findings.py", "tests/test_crop.py")
TRASH_TESTS = ("tests/common/test_trash.py", "tests/test_crop_keeps_work.py", "tests/test_old_folders.py")
SMOKE_TESTS = ("tests/trainer/test_smoke_folder.py", "tests/test_train_e2e.py")

Entry = tuple[str, str, str, str, tuple[str, ...]]

LATER: tuple[Entry, ...] = (
    # --- training runs (scripts/trainer/runs.py) ------------------------------------------------
    ("a second run in the same second gets the first run's id", "scripts/trainer/runs.py",
     "    while run_id in taken:", "    if run_id in taken:", RUNS_TESTS),
    ("the oldest run is taken as the latest when LATEST is missing", "scripts/trainer/runs.py",
     "    return runs[-1] if runs else None", "    return runs[0] if runs else None", RUNS_TESTS),
    ("the LATEST file itself is listed as a run", "scripts/trainer/runs.py",
     "if p.is_dir() and not p.name.startswith(\".\")]", "if not p.name.startswith(\".\")]", RUNS_TESTS),
    ("a flat layout holding only train.log is not listed as the legacy run", "scripts/trainer/runs.py",
     "    if list_checkpoints(output, trigger) or (output / \"train.log\").is_file():",
     "    if list_checkpoints(output, trigger):", RUNS_TESTS),
    ("a stopped run (exit 130) is recorded as failed", "scripts/trainer/runs.py",
     "\"interrupted\" if code == 130 else", "\"interrupted\" if code == -2 else", RUNS_TESTS),
    # --- which run and state --resume continues (run_resume.py, resume.py) ------------------------
    ("a resume ends at the configured steps, not the run's recorded target", "scripts/trainer/run_resume.py",
     "    return run.target if run is not None and run.target is not None else configured",
     "    return configured", RESUME_TESTS),
    ("a finished latest run is not told apart from an unfinished one at its target",
     "scripts/trainer/run_resume.py", "    if run.status == \"finished\" and choice.state is None:",
     "    if run.status == \"complete\" and choice.state is None:", RESUME_TESTS),
    ("a state exactly at the target is resumed again", "scripts/trainer/resume.py",
     "    if newest.step >= target:", "    if newest.step > target:", RESUME_TESTS),
    ("the state with the highest step is resumed, not the newest written", "scripts/trainer/resume.py",
     "key=lambda s: (s.written_ns, s.step))", "key=lambda s: (s.step, s.written_ns))", RESUME_TESTS),
    ("pruning a finished run removes its final state too", "scripts/trainer/resume.py",
     "output_dir.glob(f\"{trigger}-step*{STATE_SUFFIX}\")", "output_dir.glob(f\"{trigger}*{STATE_SUFFIX}\")",
     RESUME_TESTS),
    # --- old train/reg folders (scripts/table/old_folders.py) -----------------------------------
    ("old reg folders are not looked for", "scripts/table/old_folders.py",
     "((character.train_dir.parent, character.train_dir), (character.reg_root, character.reg_dir))",
     "((character.train_dir.parent, character.train_dir),)", OLD_FOLDER_TESTS),
    ("a folder sd-scripts would skip (not <n>_<name>) is reported", "scripts/table/old_folders.py",
     "folder.name != current.name and REPEATS_FOLDER.match(folder.name)", "folder.name != current.name",
     OLD_FOLDER_TESTS),
    ("an old folder is only a warning in validate", "scripts/table/old_folders.py",
     "RuleResult(\"old folders\", FAIL,", "RuleResult(\"old folders\", WARN,", OLD_FOLDER_TESTS),
    ("caption files are counted as images of an old folder", "scripts/table/old_folders.py",
     "if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)", "if p.is_file())", OLD_FOLDER_TESTS),
    # --- the merged table text editor (scripts/table/toml_edit.py) ------------------------------
    ("a second taken name gets _1 instead of _2", "scripts/table/toml_edit.py",
     "    number = 2\n", "    number = 1\n", TOML_TESTS),
    ("an edit is not re-parsed and compared before it is returned", "scripts/table/toml_edit.py",
     "    if _parse(result, \"the edited table\") != expected:", "    if False:", TOML_TESTS),
    ("an inserted key loses the entry's indentation", "scripts/table/toml_edit.py",
     "        new_line = f\"{indent}{key} = {shown}\"", "        new_line = f\"{key} = {shown}\"", TOML_TESTS),
    ("appended entries use \\n in a CRLF table", "scripts/table/toml_edit.py",
     "    return \"\\r\\n\" if \"\\r\\n\" in text else \"\\n\"", "    return \"\\n\"", TOML_TESTS),
    # --- rank limits, ranking and scores --------------------------------------------------------
    ("the saturation limit lets fried renders through", "scripts/evaluation/thresholds.py",
     "    saturation: float = 1.3", "    saturation: float = 2.0", RANK_TESTS),
    ("the leakage limit lets leaking checkpoints through", "scripts/evaluation/thresholds.py",
     "    leakage: float = 0.15", "    leakage: float = 0.3", RANK_TESTS),
    ("a near-copy needs only 2 close hash bits", "scripts/evaluation/thresholds.py",
     "NEAR_BITS = 10", "NEAR_BITS = 1", RANK_TESTS),
    ("lost detail is tested the wrong way round", "scripts/evaluation/ranking.py",
     "    if d.detail < limits.detail:", "    if d.detail > limits.detail:", RANK_TESTS),
    ("a tie within the spread goes to the later step", "scripts/evaluation/ranking.py",
     "        chosen = min(tied, key=lambda r: r.step)", "        chosen = max(tied, key=lambda r: r.step)",
     RANK_TESTS),
    ("a demoted checkpoint can be proposed", "scripts/evaluation/ranking.py",
     "    return [r for r in ranked if not r.demoted][:count]", "    return list(ranked)[:count]", RANK_TESTS),
    ("one near-copy demotes, whatever the share of renders", "scripts/evaluation/ranking.py",
     "scores.memorised / scores.renders > limits.memorised", "scores.memorised > limits.memorised", RANK_TESTS),
    ("a near-copy needs the hash OR the embedding to match", "scripts/evaluation/scores.py",
     "<= NEAR_BITS and cosine(", "<= NEAR_BITS or cosine(", RANK_TESTS),
    ("the references' self-similarity counts each one against itself", "scripts/evaluation/scores.py",
     "for j, w in enumerate(vectors) if j != i)", "for j, w in enumerate(vectors))", RANK_TESTS),
    ("expected detail is the stricter of baseline and references", "scripts/evaluation/scores.py",
     "max(min(was.detail, ref_detail), 1e-4)", "max(max(was.detail, ref_detail), 1e-4)", RANK_TESTS),
    # --- reg count severity (scripts/table/rules.py) --------------------------------------------
    ("too few reg images is a FAIL while the dataset is being made", "scripts/table/rules.py",
     "    if inv.require_reg:\n        return RuleResult(\"reg count\", FAIL",
     "    if not inv.require_reg:\n        return RuleResult(\"reg count\", FAIL", REG_TESTS),
    ("no reg images pass --require-reg when min_reg is 0", "scripts/table/rules.py",
     "    if count >= wanted and (count or not inv.require_reg):", "    if count >= wanted:", REG_TESTS),
    ("the reg fix always adds --count", "scripts/table/rules.py",
     "(f\" --count {wanted}\" if planned < wanted else \"\")", "f\" --count {wanted}\"", REG_TESTS),
    # --- the cause of a failed training (scripts/trainer/log.py) --------------------------------
    ("every WARNING record is taken for the cause", "scripts/trainer/log.py",
     "        if logged and logged[\"level\"] == \"WARNING\" and not logged[\"text\"].startswith(CAUSE_WARNINGS):",
     "        if False:", LOG_TESTS),
    ("a wrapped image path is joined back with a space", "scripts/trainer/log.py",
     "            in_path = \"/\" in last and not last.endswith(\",\")", "            in_path = False", LOG_TESTS),
    ("the failing image's path is left repeated in its error", "scripts/trainer/log.py",
     "error.replace(f\" {path!r}\", \"\").replace(f\" {path}\", \"\").strip()", "error.strip()", LOG_TESTS),
    # --- the trash (scripts/common/trash.py) ----------------------------------------------------
    ("a second run in the same second puts its files in the first run's trash folder",
     "scripts/common/trash.py", "            candidate.mkdir(parents=True)\n",
     "            candidate = self.root / self.name\n            candidate.mkdir(parents=True, exist_ok=True)\n",
     TRASH_TESTS),
    ("a trashed file loses its place below the dataset folder", "scripts/common/trash.py",
     "            relative = path.resolve().relative_to(self.base.resolve())", "            relative = Path(path.name)",
     TRASH_TESTS),
    # --- where a smoke run writes (scripts/trainer/smoke_folder.py) -----------------------------
    ("the last good smoke folder is deleted before the new one is renamed in", "scripts/trainer/smoke_folder.py",
     "    if final.exists():\n        final.rename(old)", "    if final.exists():\n        shutil.rmtree(final)",
     SMOKE_TESTS),
    ("a smoke-old/ left by a crash is not cleared first", "scripts/trainer/smoke_folder.py",
     "    if old.exists():\n        shutil.rmtree(old)\n    if final", "    if final", SMOKE_TESTS),
)
