"""`make mutants`: a fixed list of small deliberate bugs, each run against the tests that should notice it.

Why a fixed list and not mutmut or cosmic-ray (both tried or read, see README "Mutation run"): the
named bugs of issue 12 (skip the hash check, drop the `/history` + `/queue` probe, lose `--resume`
on its way to the script) are the ones a person could plausibly write; a generic tool proposes
thousands of operator swaps, mostly inside message strings, that take hours on two cores and
whose ratio says little about these. Each entry here is one plausible bug: file, exact old text
(which must occur exactly once, so a stale entry is reported, not skipped), new text, and the test
files that guard that code. `named=True` marks the survivors issue 12 listed: the run fails when one
of them survives, or when the kill ratio is below --min-ratio (0.9).

How it runs: the working tree (tracked and untracked, not ignored files) is copied into a temp
folder next to a link to this checkout's `../shared`, once per parallel job; the unmutated tests
must pass there first; then for each mutation the file is changed in the copy, the listed test
files run with `pytest -x`, and the file is restored. A mutant is killed when pytest fails or runs
past --timeout. Prints one line per mutant, the survivors and the kill ratio.

    python -m tools.mutants [--jobs 2] [--only TEXT] [--list] [--min-ratio 0.9] [--timeout 180]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tools.mutants_since import LATER

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

CLIENT_TESTS = ("tests/comfyui/test_client.py", "tests/comfyui/test_client_edges.py")
GEN_REG_TESTS = ("tests/test_gen_reg.py", "tests/test_gen_reg_images.py")
VALIDATE_TESTS = ("tests/test_validate.py", "tests/test_validate_boundaries.py")
CROP_TESTS = ("tests/test_crop.py", "tests/test_crop_fingerprint.py")
TRAINER_TESTS = ("tests/trainer/test_config.py", "tests/trainer/test_flags_recorded.py",
                 "tests/trainer/test_launch_defaults.py", "tests/test_train.py")
REGISTER = "            self.posted[prompt_id] = (server, work)\n"
SUBMIT = "            await server.submit(workflow, prompt_id)\n"
CHARACTER_TESTS = ("tests/table/test_character.py", "tests/table/test_character_edges.py", "tests/test_validate.py",
                   "tests/test_crop.py")


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    edits: tuple[tuple[str, str], ...]  # (exact old text, new text); each old text occurs once
    tests: tuple[str, ...]
    named: bool = False


def m(name: str, file: str, old: str, new: str, tests: Sequence[str], named: bool = False) -> Mutation:
    return Mutation(name, file, ((old, new),), tuple(tests), named)


MUTATIONS: tuple[Mutation, ...] = (
    # --- issue 12's named survivors ------------------------------------------------------------
    m("gen-reg saves a returned image without checking it is a PNG of the requested size",
      "scripts/comfyui/reg_results.py",
      "            problem = png_problem(result.images[0], reg.width, reg.height)",
      "            problem = None", GEN_REG_TESTS, named=True),
    m("any `executing` message counts as prompt done", "scripts/comfyui/connection.py",
      '        if kind == "executing" and data.get("node") is None:',
      '        if kind == "executing":', CLIENT_TESTS, named=True),
    Mutation("a dropped socket does not make waiters ask /history (broken-socket completion path)",
             "scripts/comfyui/connection.py",
             (("                self._poke_all()  # messages sent while down are lost: waiters ask /history",
               "                pass"),
              ("                down_since = None\n                self._poke_all()",
               "                down_since = None")), CLIENT_TESTS, named=True),
    m("deploy's copy skips comparing the copied bytes' hash with the checked one", "scripts/deploy.py",
      "        if digest.hexdigest() != sha256:", "        if False:", ("tests/test_deploy.py",), named=True),
    m("framing/pose share exactly at the tolerance fails", "scripts/table/rules.py",
      "> tolerance + 1e-9]", ">= tolerance]", VALIDATE_TESTS, named=True),
    m("framing/pose tolerance moved by a point", "scripts/table/rules.py",
      "> tolerance + 1e-9]", "> tolerance + 0.05]", VALIDATE_TESTS, named=True),
    m("details share exactly at the target fails", "scripts/table/rules.py",
      "OK if share >= wanted - 1e-9 else FAIL", "OK if share > wanted else FAIL", VALIDATE_TESTS, named=True),
    m("most common expression exactly at the cap fails", "scripts/table/rules.py",
      "if top_count / total > v.max_expression_share + 1e-9:", "if top_count / total >= v.max_expression_share:",
      VALIDATE_TESTS, named=True),
    m("expression count exactly at the minimum fails", "scripts/table/rules.py",
      "if len(counts) < v.min_expressions:", "if len(counts) <= v.min_expressions:", VALIDATE_TESTS, named=True),
    m("a POST that got no answer is posted again without asking /history and /queue",
      "scripts/comfyui/connection.py", "answer = await self._retry(post, got_through)",
      "answer = await self._retry(post)", CLIENT_TESTS, named=True),
    m("the probe forgets the running prompt (only /history and the pending list asked)",
      "scripts/comfyui/connection.py", '        if prompt_id in running:\n            return "running", None\n',
      "", CLIENT_TESTS, named=True),
    m("the crop fingerprint ignores the background colour", "scripts/table/crop_plan.py",
      '"background": list(character.background), "flip": job.flip,', '"flip": job.flip,', CROP_TESTS, named=True),
    m("invoke train drops --resume", "tasks.py", "*flag_pairs(dry_run=dry_run, resume=resume, ",
      "*flag_pairs(dry_run=dry_run, ", ("tests/test_tasks_flags.py",), named=True),
    m("invoke deploy drops --rollback", "tasks.py", "step=step or None, rollback=rollback, run=run or None))",
      "step=step or None, run=run or None))", ("tests/test_tasks_flags.py",), named=True),
    Mutation("the prompt id reaches the cancel path only after the POST returns (the flaky race)",
             "scripts/comfyui/batch.py",
             ((REGISTER + SUBMIT, SUBMIT + REGISTER),),
             CLIENT_TESTS, named=True),
    # --- geometry ------------------------------------------------------------------------------
    m("clamp keeps a box that overflows on the right", "scripts/imaging/geometry.py",
      "    left = min(max(left, 0), image_w - width)", "    left = max(left, 0)",
      ("tests/imaging/test_geometry.py", "tests/test_crop.py")),
    m("right overflow off by one", "scripts/imaging/geometry.py", '"right": max(0, left + width - image_w),',
      '"right": max(0, left + width - image_w - 1),', ("tests/imaging/test_geometry.py", "tests/test_crop.py")),
    m("letterbox content not centred", "scripts/imaging/geometry.py", "left=(resolution - content_w) // 2,",
      "left=0,", ("tests/imaging/test_geometry.py", "tests/test_crop.py")),
    m("letterbox scales to fill instead of fit", "scripts/imaging/geometry.py",
      "scale = min(resolution / width, resolution / height)", "scale = max(resolution / width, resolution / height)",
      ("tests/imaging/test_geometry.py", "tests/test_crop.py")),
    # --- character table -----------------------------------------------------------------------
    m("a zero-width box is accepted", "scripts/table/character_parse.py",
      "(box[2] <= 0 or box[3] <= 0 or box[0] < 0", "(box[2] < 0 or box[3] <= 0 or box[0] < 0",
      CHARACTER_TESTS),
    m("a duplicate crop name is accepted", "scripts/table/character_parse.py", "        if name in seen:",
      "        if False:", CHARACTER_TESTS),
    m("a source path leaving the folder is accepted", "scripts/table/character_parse.py",
      'if source.is_absolute() or ".." in source.parts:', "if source.is_absolute():", CHARACTER_TESTS),
    m("coverage targets need not add up to 1", "scripts/table/character_parse.py",
      "if abs(sum(shares.values()) - 1.0) > 0.01:", "if abs(sum(shares.values()) - 1.0) > 0.5:", CHARACTER_TESTS),
    m("min_train above max_train is accepted", "scripts/table/character_parse.py",
      'if values["min_train"] > values["max_train"]:', "if False:", CHARACTER_TESTS),
    m("a trigger later in the caption is kept there as well as put first", "scripts/table/character_sections.py",
      "[trigger] + [t for t in tokens if t != trigger]", "[trigger] + tokens", CHARACTER_TESTS),
    # --- validation rules and PNG checks -------------------------------------------------------
    m("exactly min_train originals fail", "scripts/table/rules.py", "if count < v.min_train:",
      "if count <= v.min_train:", VALIDATE_TESTS),
    m("exactly max_train originals fail", "scripts/table/rules.py", "if count > v.max_train:",
      "if count >= v.max_train:", VALIDATE_TESTS),
    m("exactly min_reg reg images fail", "scripts/table/rules.py", "    if count >= wanted and (count",
      "    if count > wanted and (count", VALIDATE_TESTS),
    m("a train image of the wrong size passes", "scripts/table/rules.py", "elif image.size != (res, res):",
      "elif False:", VALIDATE_TESTS),
    m("a caption with the trigger later than first passes", "scripts/table/rules.py",
      'elif text.split(",")[0].strip() != trigger:', "elif trigger not in text:", VALIDATE_TESTS),
    m("near duplicates at exactly the distance are missed", "scripts/table/rules.py",
      "(d <= distance and (gap is None", "(d < distance and (gap is None", VALIDATE_TESTS),
    m("flips of an asymmetric character pass", "scripts/table/rules.py", "    if flipped:", "    if False:",
      VALIDATE_TESTS),
    m("captions beside reg images pass", "scripts/table/rules.py", "    if captioned:", "    if False:",
      VALIDATE_TESTS),
    m("a JPEG counts as a PNG", "scripts/imaging/png.py", '    if kind != "PNG":', "    if False:",
      VALIDATE_TESTS + GEN_REG_TESTS),
    # --- crop ----------------------------------------------------------------------------------
    m("stale outputs are kept", "scripts/crop.py",
      "if png.stem in keep or png.name == CONTACT_SHEET or read_marker(png) is None:",
      "if True:", CROP_TESTS),
    m("a user's own PNG (no marker) is removed as stale", "scripts/crop.py",
      "if png.stem in keep or png.name == CONTACT_SHEET or read_marker(png) is None:",
      "if png.stem in keep or png.name == CONTACT_SHEET:", CROP_TESTS),
    m("the box is not in the fingerprint", "scripts/table/crop_plan.py", '"box": list(job.box), "resolution"',
      '"resolution"', CROP_TESTS),
    m("flip is refused even when allowed", "scripts/table/crop_plan.py",
      "if character.asymmetric and not allow_asymmetric_flip:", "if character.asymmetric:", CROP_TESTS),
    m("transparent areas are not filled with the background", "scripts/imaging/sheets.py",
      'if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:', "if False:", CROP_TESTS),
    # --- trainer config ------------------------------------------------------------------------
    m("a small resolution gets no min_bucket_reso", "scripts/trainer/launch.py", "elif resolution < 256:",
      "elif resolution < 128:", TRAINER_TESTS),
    m("keep_tokens defaults to 0", "scripts/trainer/launch.py", '"keep_tokens": int(ds.get("keep_tokens", 1)),',
      '"keep_tokens": int(ds.get("keep_tokens", 0)),', TRAINER_TESTS),
    m("--resume never reaches sd-scripts", "scripts/trainer/launch.py",
      '        argv += [f"--resume={launch.resume}", "--skip_until_initial_step"]', "        pass", TRAINER_TESTS),
    m("CUDA trains in bf16 by default", "scripts/trainer/launch.py", '"cuda": ("fp16", ("--sdpa",)),',
      '"cuda": ("bf16", ("--sdpa",)),', TRAINER_TESTS),
    m("zero steps or zero dim accepted", "scripts/trainer/train_args.py",
      "(value < 0 or (value == 0 and name in POSITIVE))", "(value < 0)", TRAINER_TESTS),
    m("a table may set a flag this project manages", "scripts/trainer/train_args.py", "    if name in MANAGED:",
      "    if False:", TRAINER_TESTS),
    m("a value outside the choices is accepted", "scripts/trainer/train_args.py",
      "if name in CHOICES and value not in CHOICES[name]:", "if False:", TRAINER_TESTS),
    # --- deploy --------------------------------------------------------------------------------
    m("a checkpoint failing the LoRA checks is deployed", "scripts/deploy.py", "    if problems:\n", "    if False:\n",
      ("tests/test_deploy.py",)),
    m("the replaced production file is not kept as the backup", "scripts/deploy.py",
      "            copy_verified(target.production, target.backup, old_sha)", "            pass",
      ("tests/test_deploy.py",)),
    m("redeploying the live file overwrites the backup with it", "scripts/deploy.py", "    if old_sha == sha:",
      "    if False:", ("tests/test_deploy.py",)),
    m("a server showing other metadata counts as confirmed", "scripts/comfyui/confirm.py",
      '"confirmed" if seen == metadata else "metadata differs"', '"confirmed"', ("tests/test_deploy.py",)),
    # --- ComfyUI client ------------------------------------------------------------------------
    m("cancel interrupts someone else's running prompt", "scripts/comfyui/connection.py",
      "                if prompt_id in ours:", "                if True:", CLIENT_TESTS),
    m("one retry fewer than asked", "scripts/comfyui/batch.py", "if work.attempts <= self.retries:",
      "if work.attempts < self.retries:", CLIENT_TESTS),
    m("a 200 with node_errors stops the whole batch", "scripts/comfyui/batch.py",
      "            if error.status == 200:", "            if False:", CLIENT_TESTS),
    m("a /view path with .. is fetched", "scripts/comfyui/endpoints.py",
      'or ".." in parts or', "or", CLIENT_TESTS),
    *(m(*entry) for entry in LATER),  # tools/mutants_since.py: the modules that landed after this list
)


def tree_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files, as git sees the working tree."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                            capture_output=True).stdout.decode()
    return [name for name in listed.split("\0") if name and (root / name).is_file()]


def make_copy(base: Path, files: Sequence[str]) -> Path:
    checkout = base / "repo"
    for name in files:
        target = checkout / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    (base / "shared").symlink_to(SHARED.resolve())
    return checkout


def run_tests(checkout: Path, tests: Sequence[str], timeout: float) -> tuple[str, float]:
    """'passed', 'failed' or 'timeout', and the seconds it took."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LORA_", "INVOKE_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                cwd=checkout, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started
    return ("passed" if result.returncode == 0 else "failed"), time.monotonic() - started


def stale(mutation: Mutation) -> str | None:
    text = (ROOT / mutation.file).read_text(encoding="utf-8")
    for old, _ in mutation.edits:
        count = text.count(old)
        if count != 1:
            return f"{mutation.file}: the old text occurs {count} times (must be once): {old.strip()[:60]!r}"
    return None


def apply(text: str, mutation: Mutation) -> str:
    for old, new in mutation.edits:
        text = text.replace(old, new, 1)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="mutants run side by side (default 2)")
    parser.add_argument("--only", default="", help="only mutations whose name or file contains this text")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--min-ratio", type=float, default=0.9, help="fail below this kill ratio (default 0.9)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per mutant run (default 180)")
    args = parser.parse_args(argv)
    chosen = [x for x in MUTATIONS if args.only in x.name or args.only in x.file]
    if args.list:
        for x in chosen:
            print(f"{'*' if x.named else ' '} {x.file:34} {x.name}")
        return 0
    problems = [p for p in (stale(x) for x in chosen) if p]
    if problems:
        print("The mutation list is out of date with the code:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if not SHARED.is_dir():
        print(f"The tests need {SHARED} (../shared beside the checkout); nothing was run.", file=sys.stderr)
        return 2
    files = tree_files(ROOT)
    jobs = max(1, min(args.jobs, len(chosen)))
    with tempfile.TemporaryDirectory(prefix="mutants-") as temp:
        copies = [make_copy(Path(temp) / f"job{i}", files) for i in range(jobs)]
        guarded = sorted({t for x in chosen for t in x.tests})
        print(f"{len(chosen)} mutations over {len({x.file for x in chosen})} files; {jobs} at a time. "
              f"Baseline: {len(guarded)} test files unmutated ...", flush=True)
        outcome, seconds = run_tests(copies[0], guarded, args.timeout * 3)
        if outcome != "passed":
            print(f"The unmutated tests did not pass ({outcome}); fix that first.", file=sys.stderr)
            return 2
        print(f"baseline passed in {seconds:.0f} s", flush=True)
        free = list(copies)

        def one(mutation: Mutation) -> tuple[Mutation, str, float]:
            checkout = free.pop()
            try:
                path = checkout / mutation.file
                original = path.read_text(encoding="utf-8")
                path.write_text(apply(original, mutation), encoding="utf-8")
                try:
                    outcome, seconds = run_tests(checkout, mutation.tests, args.timeout)
                finally:
                    path.write_text(original, encoding="utf-8")
            finally:
                free.append(checkout)
            verdict = "SURVIVED" if outcome == "passed" else "killed" + (" (timeout)" if outcome == "timeout" else "")
            print(f"  {verdict:17} {seconds:5.1f} s  {'*' if mutation.named else ' '} {mutation.file}: {mutation.name}",
                  flush=True)
            return mutation, verdict, seconds

        with ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(one, chosen))
    survivors = [x for x, verdict, _ in results if verdict == "SURVIVED"]
    killed = len(results) - len(survivors)
    ratio = killed / len(results) if results else 1.0
    print(f"\nkilled {killed} of {len(results)} mutants: kill ratio {ratio:.0%} (* = named in issue 12)")
    for x in survivors:
        print(f"  survivor{' (named!)' if x.named else ''}: {x.file}: {x.name}")
    named_left = [x for x in survivors if x.named]
    return 1 if named_left or ratio < args.min_ratio else 0


if __name__ == "__main__":
    sys.exit(main())
