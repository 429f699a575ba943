"""Invoke tasks: the pipeline from reference sheets to a LoRA live in ComfyUI.

Tasks only compose: each resolves settings (invoke config < LORA_* env < flags), then runs a
script from `scripts/` as `python -m scripts.NAME` with explicit flags, echoing the command.
Logic lives in `scripts/`; `invoke --help TASK` explains every flag.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterable
from typing import Any

from invoke import Collection, Context, Exit
from invoke import task as invoke_task

from scripts.common.cli import positive_int
from scripts.common.settings import Settings, SettingsError, load_settings
from scripts.common.task_runner import ScriptRunner, ScriptTask

PY = shlex.quote(sys.executable)
CHARACTER_HELP = "character folder under the dataset root (default: example)"


def task(*args: Any, **kwargs: Any) -> Any:
    """invoke's `@task`; short flags mean one thing in every task (-c, -d, -s: see ScriptTask)."""
    return invoke_task(*args, klass=ScriptTask, **kwargs)


def settings(c: Context, **flags: Any) -> Settings:
    """Resolve machine settings for a task: defaults < invoke config < LORA_* env < flags."""
    try:
        return load_settings(config=dict(c.config.get("lora", {})), flags=flags)
    except SettingsError as error:
        raise Exit(str(error), code=2) from None


def script(c: Context, module: str, *args: Any, **options: Any) -> Any:
    """Run `python -m scripts.MODULE ARGS` echoed; a non-zero exit ends the task with its code."""
    words = [PY, "-m", f"scripts.{module}", *(shlex.quote(str(a)) for a in args if a is not None)]
    return c.run(" ".join(words), echo=True, pty=False, **options)


def flag_pairs(**values: Any) -> list[str]:
    """`--name value` for each value that is set; booleans become bare flags; lists repeat."""
    words: list[str] = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                words += [flag, str(item)]
        else:
            words += [flag, str(value)]
    return words


def servers(values: Iterable[str] | None, base: Settings) -> list[str]:
    return list(values) if values else list(base.comfyui_urls)


# --- dataset (crop, validate, demo) -------------------------------------------------------------
# [dataset tasks]
@task(help={
    "character": CHARACTER_HELP,
    "dry_run": "write previews and contact_sheet.png to the preview folder instead of the training set",
    "clamp": "move boxes that overflow their sheet to the nearest valid box (with a warning) instead of failing",
    "allow_asymmetric_flip": "write flip = true crops even though the character is asymmetric",
    "adopt_captions": "copy captions you edited by hand into character.toml (text edit, comments kept)",
    "overwrite_captions": "replace captions you edited by hand with the table's (old ones go to the trash)",
    "move_old_folders": "move train/ and reg/ folders left from an earlier trigger, repeats or class to the trash",
    "retrigger": "after changing the trigger: put it in place of the earlier one at the start of the table's "
                 "captions and test prompts (text edit, comments kept), then crop",
})
def crop(c: Context, character: str = "example", dry_run: bool = False, clamp: bool = False,
         allow_asymmetric_flip: bool = False, adopt_captions: bool = False, overwrite_captions: bool = False,
         move_old_folders: bool = False, retrigger: bool = False) -> None:
    """Crop reference sheets into the captioned training set."""
    base = settings(c)
    script(c, "crop", "--character", character, "--dataset-root", base.dataset_root,
           *flag_pairs(dry_run=dry_run, clamp=clamp, allow_asymmetric_flip=allow_asymmetric_flip,
                       adopt_captions=adopt_captions, overwrite_captions=overwrite_captions,
                       move_old_folders=move_old_folders, retrigger=retrigger))


@task(help={
    "character": CHARACTER_HELP,
    "min_train": "fewest original train images (default: the table's [validation], 15)",
    "max_train": "most original train images (default: the table's [validation], 20)",
    "min_reg": "fewest regularization images (default: the table's [validation], 100)",
    "tolerance": "allowed gap between framing/pose shares and targets (default: 0.15)",
    "duplicate_distance": "dHash distance at or below which images count as near duplicates (default: 4)",
    "require_reg": "fail (not warn) when there are too few (or no) regularization images, as before training",
})
def validate(c: Context, character: str = "example", min_train: str | None = None, max_train: str | None = None,
             min_reg: str | None = None, tolerance: str | None = None,
             duplicate_distance: str | None = None, require_reg: bool = False) -> None:
    """Check a character's dataset and print the report."""
    base = settings(c)
    script(c, "validate", "--character", character, "--dataset-root", base.dataset_root,
           *flag_pairs(min_train=min_train, max_train=max_train, min_reg=min_reg, tolerance=tolerance,
                       duplicate_distance=duplicate_distance, require_reg=require_reg))


@task(help={
    "character": CHARACTER_HELP,
    "write_proposals": "append every figure no crop covers to character.toml as a [[crop]] entry to caption",
    "fix_cuts": "widen every full_body box that cuts its figure to the figure's box (edits character.toml)",
    "sheet": "only this sheet (a file name in the character folder)",
})
def boxes(c: Context, character: str = "example", write_proposals: bool = False, fix_cuts: bool = False,
          sheet: str = "") -> None:
    """Draw every crop box on its sheet; find uncovered figures."""
    base = settings(c)
    script(c, "boxes", "--character", character, "--dataset-root", base.dataset_root,
           *flag_pairs(write_proposals=write_proposals, fix_cuts=fix_cuts, sheet=sheet or None))


@task
def boxes_docs(c: Context) -> None:
    """Redraw docs/boxes_example.png from the example."""
    base = settings(c)
    script(c, "example_art", "--out", base.dataset_root / "example")
    script(c, "boxes", "--character", "example", "--dataset-root", base.dataset_root,
           "--sheet", "ember_lineup.png", "--small-copy", "docs/boxes_example.png")


# --- regularization (gen-reg) -------------------------------------------------------------------
# [regularization tasks]
@task(iterable=["server"], help={
    "character": CHARACTER_HELP,
    "count": "images in the set (default: the table's [regularization] count)",
    "server": "ComfyUI server URL; repeat for several (default: the configured comfyui_urls)",
    "concurrency": "prompts kept queued per server (default: the configured concurrency)",
})
def gen_reg(c: Context, character: str = "example", count: str | None = None, server: list[str] | None = None,
            concurrency: str | None = None) -> None:
    """Generate regularization images on ComfyUI."""
    # Numbers stay text here: the script checks them (a whole number, 1 or more) with a plain message.
    base = settings(c, comfyui_urls=server or None, concurrency=concurrency)
    script(c, "gen_reg", "--character", character, "--dataset-root", base.dataset_root,
           "--concurrency", base.concurrency, *flag_pairs(count=count, server=servers(server, base)))


def whole_count(flag: str, value: object) -> str | None:
    """A count flag as the script will read it, refused here (exit 2) with the script's words when it is not 1+."""
    if value is None:
        return None
    try:
        return str(positive_int(str(value)))
    except argparse.ArgumentTypeError as error:
        raise Exit(f"--{flag}: {error}; leave it out for the default.", code=2) from None


@task(iterable=["server"], help={
    "character": CHARACTER_HELP,
    "count": "candidates to render (default: the table's [topup] count, 8)",
    "pick": "add these candidates to the table instead of rendering, e.g. 3,7,12 (numbers on the contact sheet)",
    "server": "ComfyUI server URL; repeat for several (default: the configured comfyui_urls)",
    "concurrency": "prompts kept queued per server (default: the configured concurrency)",
})
def topup(c: Context, character: str = "example", count: str | None = None, pick: str = "",
          server: list[str] | None = None, concurrency: str | None = None) -> None:
    """Render candidate pictures to top up a set, or pick some."""
    count = whole_count("count", count)
    base = settings(c, comfyui_urls=server or None, concurrency=concurrency)
    if pick:
        script(c, "topup", "--character", character, "--dataset-root", base.dataset_root, "--pick", pick)
        return
    script(c, "topup", "--character", character, "--dataset-root", base.dataset_root,
           "--concurrency", base.concurrency, *flag_pairs(count=count, server=servers(server, base)))


# --- training (setup, smoke, train) -------------------------------------------------------------
# [training tasks]
def _kohya_flags(base: Settings) -> list[Any]:
    """The machine settings every training script gets as explicit flags."""
    words: list[Any] = ["--kohya-dir", base.kohya_dir, "--sd-scripts-dir", base.sd_scripts_dir,
                        "--kohya-python", base.kohya_python, "--tokenizer-cache-dir", base.tokenizer_cache_dir,
                        "--dataset-root", base.dataset_root]
    if base.accelerate_config is not None:
        words += ["--accelerate-config", base.accelerate_config]
    return words


@task(iterable=["pip_option"], help={
    "character": "character whose [training] pretrained_model is checked (default: example)",
    "pip_option": "extra pip option for the kohya venv, repeatable (e.g. --pip-option=--no-index)",
    "torch_index_url": "pip index for the torch/torchvision pair (default: chosen per platform)",
    "skip_comfyui": "do not check that ComfyUI answers",
    "kohya_dir": "folder of the kohya venv and sd-scripts checkout (default: the kohya_dir setting)",
    "sd_scripts_dir": "the sd-scripts checkout (default: the sd_scripts_dir setting, <kohya_dir>/sd-scripts)",
    "kohya_python": "python of the kohya venv, e.g. an existing kohya_ss one (default: the kohya_python setting)",
    "comfyui_dir": "the ComfyUI folder (default: the comfyui_dir setting)",
})
def setup(c: Context, character: str = "example", pip_option: list[str] | None = None, torch_index_url: str = "",
          skip_comfyui: bool = False, kohya_dir: str | None = None, sd_scripts_dir: str | None = None,
          kohya_python: str | None = None, comfyui_dir: str | None = None) -> None:
    """Fetch sd-scripts, build the kohya venv, check the model."""
    base = settings(c, kohya_dir=kohya_dir, sd_scripts_dir=sd_scripts_dir, kohya_python=kohya_python,
                    comfyui_dir=comfyui_dir)
    servers_flags = [w for url in base.comfyui_urls for w in ("--server", url)]
    script(c, "setup", *_kohya_flags(base), "--comfyui-dir", base.comfyui_dir, *servers_flags,
           *[f"--pip-option={o}" for o in (pip_option or [])],
           *flag_pairs(character=character, torch_index_url=torch_index_url or None, skip_comfyui=skip_comfyui))


@task(help={
    "character": CHARACTER_HELP,
    "dry_run": "write the dataset TOML and print the exact training command; train nothing",
    "device": "precision flags for this device: auto (probe the kohya venv), cpu, mps, cuda, cuda-bf16",
    "skip_validate": "do not validate the dataset first",
})
def smoke(c: Context, character: str = "example", dry_run: bool = False, device: str = "auto",
          skip_validate: bool = False) -> None:
    """Run a 5-step training smoke test and check the LoRA."""
    base = settings(c)
    script(c, "train", "--smoke", "--character", character, *_kohya_flags(base), "--build-root", base.build_root,
           *flag_pairs(dry_run=dry_run, device=device, skip_validate=skip_validate))


@task(help={
    "character": CHARACTER_HELP,
    "dry_run": "write the dataset TOML and print the exact training command; train nothing",
    "resume": "continue the latest unfinished run in output/<character>/runs/ from its newest saved state, up to "
              "its target step (a finished run: raise --max-train-steps)",
    "num_processes": "accelerate processes, e.g. one per GPU (default: the num_processes setting, 1)",
    "accelerate_config": "accelerate config file for several GPUs or machines (default: none, explicit flags)",
    "max_train_steps": "override the locked step count (default: kohya/train.toml, 920)",
    "save_every_n_steps": "save a checkpoint every N steps (default: kohya/train.toml or [training], 230)",
    "device": "precision flags for this device: auto (probe the kohya venv), cpu, mps, cuda, cuda-bf16",
    "skip_validate": "do not validate the dataset first",
})
def train(c: Context, character: str = "example", dry_run: bool = False, resume: bool = False,
          num_processes: str | None = None, accelerate_config: str = "", max_train_steps: str | None = None,
          device: str = "auto", skip_validate: bool = False, save_every_n_steps: str | None = None) -> None:
    """Train the LoRA, then list and verify its checkpoints."""
    base = settings(c, accelerate_config=accelerate_config or None, num_processes=num_processes)
    script(c, "train", "--character", character, *_kohya_flags(base), "--build-root", base.build_root,
           "--output-root", base.output_root, "--num-processes", base.num_processes,
           *flag_pairs(dry_run=dry_run, resume=resume, max_train_steps=max_train_steps, device=device,
                       skip_validate=skip_validate, save_every_n_steps=save_every_n_steps))


# --- checkpoint selection and deploy (compare, rank, deploy) ------------------------------------
RUN_HELP = ("the training run, a folder name in output/<character>/runs/ like 20261203-131500, or legacy "
            "(checkpoints from before runs had folders); default: the latest run")
# [selection tasks]
@task(iterable=["server", "strength", "prompt"], help={
    "character": CHARACTER_HELP,
    "server": "ComfyUI server URL; repeat for several (default: the configured comfyui_urls)",
    "strength": "LoRA strength; repeat for a strength axis, e.g. --strength 0.8 --strength 1.0 (default: 1.0)",
    "steps": "only these checkpoints, comma-separated, e.g. 230,460,final (default: all)",
    "prompt": "an extra ad-hoc test prompt (the trigger is put first); repeatable",
    "keep_staged": "leave the staged copies in <loras>/_eval/<character>/ to try them in the ComfyUI UI",
    "run": RUN_HELP,
})
def compare(c: Context, character: str = "example", server: list[str] | None = None,
            strength: list[str] | None = None, steps: str = "", prompt: list[str] | None = None,
            keep_staged: bool = False, run: str = "") -> None:
    """Render the checkpoint x prompt grid on ComfyUI."""
    base = settings(c, comfyui_urls=server or None)
    script(c, "compare", "--character", character, "--dataset-root", base.dataset_root,
           "--output-root", base.output_root, "--comfyui-dir", base.comfyui_dir, "--concurrency", base.concurrency,
           *flag_pairs(server=servers(server, base), strength=strength or None, steps=steps or None,
                       prompt=prompt or None, keep_staged=keep_staged, run=run or None))


@task(iterable=["server"], help={
    "character": CHARACTER_HELP,
    "server": "ComfyUI server URL; repeat for several (default: the configured comfyui_urls)",
    "seeds": "seeds per test prompt, starting at the prompt's own (default: 4)",
    "steps": "only these checkpoints, comma-separated, e.g. 230,460,final (default: all)",
    "embedder": "how images are compared: stats (no model; default), dino or clip (in the kohya venv)",
    "embedder_path": "a local folder with the dino/clip weights (default: the Hugging Face cache)",
    "keep_staged": "leave the staged copies in <loras>/_eval/<character>/ to try them in the ComfyUI UI",
    "run": RUN_HELP,
})
def rank(c: Context, character: str = "example", server: list[str] | None = None, seeds: int = 4,
         steps: str = "", embedder: str = "stats", embedder_path: str = "", keep_staged: bool = False,
         run: str = "") -> None:
    """Propose the best checkpoint, with measured reasons."""
    base = settings(c, comfyui_urls=server or None)
    script(c, "rank", "--character", character, "--dataset-root", base.dataset_root,
           "--output-root", base.output_root, "--comfyui-dir", base.comfyui_dir, "--concurrency", base.concurrency,
           "--seeds", seeds, "--embedder", embedder, "--kohya-python", base.kohya_python,
           *flag_pairs(server=servers(server, base), steps=steps or None, embedder_path=embedder_path or None,
                       keep_staged=keep_staged, run=run or None))


@task(iterable=["server"], help={
    "character": CHARACTER_HELP,
    "step": "checkpoint to put live: a step number from the grid, 'final', or 'proposed' (invoke rank's top pick)",
    "rollback": "swap the live LoRA with the backup kept by the last deploy",
    "server": "ComfyUI server to confirm the deploy on; repeatable (default: the configured comfyui_urls)",
    "comfyui_dir": "the ComfyUI folder whose models/loras/ gets the LoRA (default: the comfyui_dir setting)",
    "run": RUN_HELP + " (with --step proposed: the run rank proposed from)",
})
def deploy(c: Context, character: str = "example", step: str = "", rollback: bool = False,
           server: list[str] | None = None, comfyui_dir: str | None = None, run: str = "") -> None:
    """Put one checkpoint live in ComfyUI, verified."""
    if not step and not rollback:
        raise Exit("Say which checkpoint to deploy with --step N (a step from the grid, final, or proposed), "
                   "or pass --rollback to restore the previous file.", code=2)
    if step and rollback:
        raise Exit("--step and --rollback do not go together: --rollback restores the backup, whatever its step.",
                   code=2)
    base = settings(c, comfyui_urls=server or None, comfyui_dir=comfyui_dir)
    script(c, "deploy", "--character", character, "--dataset-root", base.dataset_root,
           "--output-root", base.output_root, "--comfyui-dir", base.comfyui_dir,
           *flag_pairs(server=servers(server, base), step=step or None, rollback=rollback, run=run or None))


# --- the whole chain (all, approve) -------------------------------------------------------------
# [chain tasks]
@task(name="all", iterable=["server"], help={
    "character": CHARACTER_HELP,
    "check": "list every missing prerequisite of the chain (servers, base model, sd-scripts); run nothing",
    "from_": "skip the stages before this one (crop-preview, approve, crop, gen-reg, validate, setup, smoke, "
             "train, compare, rank where present, choose, deploy)",
    "until": "stop after this stage",
    "approve_crops": "approve the crop previews without stopping at gate 1 (you looked at them already)",
    "deploy_proposed": "at gate 2, deploy the proposed checkpoint (rank's; the final one without scripts/rank.py)",
    "step": "at gate 2, deploy this checkpoint: a step number from the grid, 'final' or 'proposed'",
    "server": "ComfyUI server URL; repeat for several (default: the configured comfyui_urls)",
})
def all_stages(c: Context, character: str = "example", check: bool = False, from_: str = "", until: str = "",
               approve_crops: bool = False, deploy_proposed: bool = False, step: str = "",
               server: list[str] | None = None) -> None:
    """Run every stage not done yet; stop at the two gates."""
    base = settings(c, comfyui_urls=server or None)
    machine = flag_pairs(dataset_root=base.dataset_root, output_root=base.output_root, build_root=base.build_root,
                         comfyui_dir=base.comfyui_dir, concurrency=base.concurrency, kohya_dir=base.kohya_dir,
                         sd_scripts_dir=base.sd_scripts_dir, kohya_python=base.kohya_python,
                         accelerate_config=base.accelerate_config, num_processes=base.num_processes,
                         tokenizer_cache_dir=base.tokenizer_cache_dir, server=list(base.comfyui_urls))
    script(c, "pipeline", "--character", character, *machine,
           *flag_pairs(check=check, until=until or None, approve_crops=approve_crops,
                       deploy_proposed=deploy_proposed, step=step or None),
           *(["--from", from_] if from_ else []))


@task(positional=["what"], help={
    "what": "what you approve: crops (the crop previews; gate 1 of invoke all)",
    "character": CHARACTER_HELP,
})
def approve(c: Context, what: str, character: str = "example") -> None:  # no default: invoke skips those
    """Approve the crop previews (gate 1 of invoke all)."""
    base = settings(c)
    script(c, "approve", what, "--character", character, "--dataset-root", base.dataset_root,
           "--output-root", base.output_root)


# --- project chores -----------------------------------------------------------------------------
@task(iterable=["server"], help={
    "character": CHARACTER_HELP, "offline": "skip asking the ComfyUI servers whether they are up",
    "server": "ComfyUI server URL to ask; repeat for several (default: the configured comfyui_urls)",
})
def status(c: Context, character: str = "example", offline: bool = False, server: list[str] | None = None) -> None:
    """Show where a character stands and the next step."""
    base = settings(c, comfyui_urls=server or None)
    script(c, "status", "--character", character, *(["--offline"] if offline else []),
           "--dataset-root", base.dataset_root, "--output-root", base.output_root,
           "--sd-scripts-dir", base.sd_scripts_dir, "--kohya-python", base.kohya_python,
           *flag_pairs(server=base.comfyui_urls))


@task
def demo(c: Context) -> None:
    """Run the offline pipeline on the bundled example."""
    base = settings(c)
    root = ["--dataset-root", base.dataset_root]
    script(c, "example_art", "--out", base.dataset_root / "example")
    script(c, "crop", "--character", "example", "--dry-run", *root)
    script(c, "crop", "--character", "example", *root)
    script(c, "validate", "--character", "example", *root)
    status(c, character="example")


@task(help={"k": "only tests whose names match this pytest -k expression", "x": "stop at the first failure"})
def test(c: Context, k: str = "", x: bool = False) -> None:
    """Run the test suite with pytest."""
    args = ["-q"] + (["-k", k] if k else []) + (["-x"] if x else [])
    c.run(" ".join([PY, "-m", "pytest", *map(shlex.quote, args)]), echo=True, pty=False)


@task
def bench(c: Context) -> None:
    """Run the benchmarks and print measured ratios."""
    c.run(f"{PY} -m bench", echo=True, pty=False)


# No ns.configure defaults: every machine-setting default lives once, in scripts/common/settings.py.
ns = Collection.from_module(sys.modules[__name__])
# Stop signals (Ctrl-C, SIGTERM, SIGHUP) reach each script once and end it cleanly: see task_runner.py.
ns.configure({"runners": {"local": ScriptRunner}})
