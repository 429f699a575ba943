"""Pure planners for `invoke setup`: from observed facts to checklist items and the commands to run.

`scripts/setup.py` gathers `Facts` (files, git, one probe of the kohya venv, ComfyUI), calls
`plan(facts)`, prints the items, runs their actions, gathers again and re-plans. Nothing here
touches the disk or the network; what sd-scripts' source requires is read by
`scripts.trainer.sd_scripts_source`. An item's text is its checklist line: item, state, and the
fix when the state is not OK.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scripts.trainer import tokenizers

OK, FIX, FAIL, WARN = "ok", "fix", "FAIL", "warn"
WAIT = "wait"  # pending: waits for an item above (one setup fixes, or one that needs you); not a failure
SKIP = "skip"  # not checked (what it needs was not given); not a pass either
PIP_NAMES = {
    "lion_pytorch": "lion-pytorch", "prodigyplus": "prodigy-plus-schedule-free",
    "pytorch_optimizer": "pytorch-optimizer", "prodigyopt": "prodigyopt", "schedulefree": "schedulefree",
    "cv2": "opencv-python", "PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn",
    "skimage": "scikit-image", "huggingface_hub": "huggingface-hub", "google": "protobuf",
    "dadaptation": "dadaptation", "imagesize": "imagesize", "rich": "rich", "sentencepiece": "sentencepiece",
    "altair": "altair", "toml": "toml", "voluptuous": "voluptuous", "einops": "einops", "ftfy": "ftfy",
    "open_clip": "open-clip-torch", "bitsandbytes": "bitsandbytes", "safetensors": "safetensors",
}
TORCH_PAIR = ("torch", "torchvision")
# The pair the recordings ran with (torch 2.13.0+cpu, torchvision 0.28.0): they import together.
TORCH_VERSIONS = {"torch": "2.13.0", "torchvision": "0.28.0"}
PINNED_COMMIT = "48d368fa557731ad0488c07304dfeba8c07910eb"  # kohya/sd-scripts gitlink, the recordings' commit
TOKENIZER_REPO = "openai/clip-vit-large-patch14"
TOKENIZER_FOLDER = TOKENIZER_REPO.replace("/", "_")  # sd-scripts' <cache>/<repo with / -> _>
TORCH_INDEX = {"cuda": "https://download.pytorch.org/whl/cu128", "cpu": "https://download.pytorch.org/whl/cpu"}


@dataclass(frozen=True)
class Action:
    what: str
    argv: tuple[str, ...]
    cwd: Path | None = None
    stamp: tuple[Path, str] | None = None  # write this text to this file when the command succeeds
    optional: bool = False  # a failure is reported but does not stop setup (e.g. offline downloads)
    # the item's later actions do not need this one (separate pip installs): when it fails they still run,
    # so an unreachable index for one install leaves only that install for the next setup
    independent: bool = False


@dataclass(frozen=True)
class Item:
    name: str
    state: str  # ok | fix (an action will fix it) | FAIL (needs you) | warn (optional) | wait | skip
    detail: str
    fix: str = ""
    actions: tuple[Action, ...] = ()

    def line(self) -> str:
        text = f"[{self.state:^4}] {self.name}: {self.detail}"
        return text + (f"\n       fix: {self.fix}" if self.fix and self.state not in (OK, WAIT) else "")


@dataclass(frozen=True)
class Probe:
    missing: tuple[str, ...] = ()
    broken: Mapping[str, str] = field(default_factory=dict)
    device: str = "cpu"
    torch: str | None = None
    accelerate: str | None = None
    error: str | None = None  # the probe itself failed to run
    memory: int | None = None  # GPU memory in bytes (CUDA only)


@dataclass(frozen=True)
class Facts:
    python: str  # the interpreter that creates the venv (this one)
    sd_scripts_dir: Path
    sd_scripts_ok: bool  # train_network.py is there
    superproject: Path | None  # git repository that has sd-scripts as a submodule
    submodule_url: str | None
    kohya_python: Path
    venv_exists: bool
    requirements_hash: str | None  # of sd-scripts' requirements.txt; None when absent
    requirements_stamp: str | None  # the hash recorded after the last successful install
    required: tuple[str, ...] = ()
    probe: Probe | None = None
    pip_options: tuple[str, ...] = ()
    torch_index: str | None = None
    accelerate_config: Path | None = None
    accelerate_config_exists: bool = True
    pretrained_model: Path | None = None
    model_source: str = ""
    model_exists: bool = False
    comfyui: str | None = None  # None = answered; else what went wrong
    comfyui_url: str = ""
    loras_dir: Path | None = None
    loras_writable: bool = False
    tokenizer_cache: Path | None = None
    tokenizer_cached: bool = False
    tokenizer_tried: bool = False  # a download was attempted in this setup run
    submodule_error: str | None = None  # from the last `git submodule update` attempt
    model_error: str | None = None  # why the configured base checkpoint could not be read (bad [training])
    flags_missing: tuple[str, ...] = ()  # flags build_command can emit that the checkout does not define
    dataset_keys_missing: tuple[str, ...] = ()  # dataset TOML keys we write that its schema lacks
    model_family: str = ""  # what the base model's header says (scripts/trainer/family.py), e.g. "SDXL (...)"
    model_problem: str | None = None  # why this tool cannot train on that file (a LoRA, Flux, a mismatch, ...)
    bigg_needed: bool = False  # SDXL: the trainer also reads the OpenCLIP bigG tokenizer
    bigg_cached: bool = False
    estimate: str = ""  # scripts/trainer/estimate.py's line for the configured run
    estimate_warning: str | None = None
    comfyui_tokenizer_note: str = ""  # why comfyui_dir cannot seed the tokenizer (tokenizer_seed.comfyui_problem)


def pip_name(module: str) -> str:
    return PIP_NAMES.get(module, module.replace("_", "-"))


def torch_install(system: str, has_nvidia: bool, index: str | None = None) -> tuple[str, ...]:
    """pip arguments installing a torch/torchvision pair that import together on this platform."""
    pair = tuple(f"{n}=={TORCH_VERSIONS[n]}" for n in TORCH_PAIR)
    if index is None and system != "Darwin":  # macOS wheels (MPS) come from PyPI itself
        index = TORCH_INDEX["cuda" if has_nvidia else "cpu"]
    return pair + (("--index-url", index) if index else ())


# --- the checklist --------------------------------------------------------------------------------

def venv_dir(kohya_python: Path) -> Path:
    return kohya_python.parent.parent


def pip(facts: Facts, *args: str) -> tuple[str, ...]:
    return (str(facts.kohya_python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
            *facts.pip_options, *args)


def plan(facts: Facts, system: str = "Linux", has_nvidia: bool = False) -> list[Item]:
    items = [_sd_scripts(facts), _interface(facts)]
    venv = _venv(facts, system, has_nvidia)
    items.append(venv)
    items.append(_accelerate(facts))
    items.append(_device(facts))
    items.append(_model(facts))
    items.append(_tokenizer(facts))
    items.append(_estimate(facts))
    items.append(_comfyui(facts))
    return items


def _sd_scripts(f: Facts) -> Item:
    name = "sd-scripts checkout"
    if f.sd_scripts_ok:
        return Item(name, OK, f"{f.sd_scripts_dir} has train_network.py")
    if f.superproject is None:
        return Item(name, FAIL,
                    f"{f.sd_scripts_dir} has no train_network.py and is not a submodule of a git repository",
                    fix=f"git clone https://github.com/kohya-ss/sd-scripts.git {f.sd_scripts_dir}, or set "
                        f"kohya_dir / sd_scripts_dir (invoke.yaml lora:, LORA_KOHYA_DIR) to an existing "
                        f"kohya_ss checkout")
    command = f"git -C {f.superproject} submodule update --init --recursive"
    if f.submodule_error:
        return Item(name, FAIL, f"{f.sd_scripts_dir} is empty and fetching it failed: {f.submodule_error}",
                    fix=f"this needs network access to {f.submodule_url or 'the submodule URL'}; when online "
                        f"run: {command}")
    inside = f.sd_scripts_dir.resolve().is_relative_to(f.superproject.resolve())
    rel = f.sd_scripts_dir.resolve().relative_to(f.superproject.resolve()) if inside else f.sd_scripts_dir
    return Item(name, FIX, f"{f.sd_scripts_dir} is an empty submodule", fix=command,
                actions=(Action(f"fetch sd-scripts from {f.submodule_url}",
                                ("git", "-C", str(f.superproject), "submodule", "update", "--init", "--recursive",
                                 "--", str(rel))),))


def _interface(f: Facts) -> Item:
    name = "sd-scripts flags"
    if not f.sd_scripts_ok:
        return Item(name, WAIT, "waits for the sd-scripts checkout")
    problems = []
    if f.flags_missing:
        problems.append(f"it defines no {', '.join('--' + x for x in f.flags_missing)} (no `\"--flag\"` "
                        f"add_argument in train_network.py or library/*.py), which scripts/trainer/launch.py can pass")
    if f.dataset_keys_missing:
        problems.append(f"its dataset schema (library/config_util.py) has no {', '.join(f.dataset_keys_missing)}, "
                        f"which the generated dataset TOML uses")
    if problems:
        return Item(name, FAIL, f"{f.sd_scripts_dir}: " + "; ".join(problems),
                    fix=f"check out the pinned sd-scripts commit {PINNED_COMMIT[:7]} (git submodule update), or when "
                        f"you move the pin, drop those keys from kohya/train.toml / [training] and from "
                        f"scripts/trainer/train_args.py")
    return Item(name, OK, "every flag and dataset key this project writes is defined in the checkout")


def _venv(f: Facts, system: str, has_nvidia: bool) -> Item:
    name = "kohya venv"
    venv = venv_dir(f.kohya_python)
    if not f.sd_scripts_ok:
        return Item(name, WAIT, "waits for the sd-scripts checkout (its requirements.txt)")
    actions: list[Action] = []
    notes: list[str] = []
    if not f.venv_exists:
        actions.append(Action(f"create the venv {venv}", (f.python, "-m", "venv", str(venv))))
        notes.append("missing: will create it")
    probe = f.probe
    if probe is not None and probe.error:
        return Item(name, FAIL, f"{f.kohya_python} does not run: {probe.error}",
                    fix=f"delete {venv} and run `invoke setup` again to rebuild it, or set kohya_python to a "
                        f"working venv")
    torch_wanted = "torch" in f.required
    torch_bad = probe is not None and any(m in probe.missing or m in probe.broken for m in TORCH_PAIR)
    if torch_wanted and (not f.venv_exists or torch_bad):
        actions.append(Action("install a torch/torchvision pair that import together",
                              pip(f, *torch_install(system, has_nvidia, f.torch_index)), independent=True))
        notes.append("torch/torchvision " + ("missing or mismatched" if torch_bad else "to install"))
    if f.requirements_hash and f.requirements_hash != f.requirements_stamp:
        actions.append(Action("install sd-scripts' requirements.txt", pip(f, "-r", "requirements.txt"),
                              cwd=f.sd_scripts_dir, stamp=(venv / ".sd-scripts-requirements", f.requirements_hash),
                              independent=True))
        notes.append("requirements.txt not installed" if f.requirements_stamp is None else "requirements.txt changed")
    elif probe is not None:
        missing = [m for m in probe.missing if m not in TORCH_PAIR]
        if missing:
            packages = sorted({pip_name(m) for m in missing})
            actions.append(Action(f"install what train_network.py imports but the venv lacks: {', '.join(packages)}",
                                  pip(f, *packages), independent=True))
            notes.append(f"missing modules: {', '.join(missing)}")
    # Installed but failing on import: installing the same package again would not help.
    broken = {m: e for m, e in (probe.broken.items() if probe is not None else ()) if m not in TORCH_PAIR}
    if broken:
        notes.append("installed but failing on import: " + "; ".join(f"{m} ({e})" for m, e in broken.items()))
    if actions:
        return Item(name, FIX, "; ".join(notes), fix=" && ".join(" ".join(a.argv) for a in actions),
                    actions=tuple(actions))
    if broken:
        packages = sorted({pip_name(m) for m in broken})
        return Item(name, FAIL, "; ".join(notes),
                    fix=f"read the error above; reinstall with {' '.join(pip(f, '--force-reinstall', *packages))}, "
                        f"or install the versions sd-scripts' requirements.txt pins")
    if probe is None:
        return Item(name, WARN, f"{f.kohya_python} not probed")
    return Item(name, OK, f"{f.kohya_python}: all {len(f.required)} modules train_network.py needs are importable")


def _accelerate(f: Facts) -> Item:
    name = "accelerate"
    if f.accelerate_config is not None and not f.accelerate_config_exists:
        return Item(name, FAIL, f"the accelerate config file {f.accelerate_config} does not exist",
                    fix="write it with `accelerate config --config_file FILE` or drop the accelerate_config setting")
    if f.probe is None or f.probe.error:
        return Item(name, WAIT, "waits for the kohya venv")
    if not f.probe.accelerate:
        return Item(name, FIX if not f.sd_scripts_ok else FAIL, "no `accelerate` script in the kohya venv",
                    fix=" ".join(pip(f, "accelerate")))
    how = (f"config file {f.accelerate_config}" if f.accelerate_config
           else "explicit launch flags, no config file or prompt")
    return Item(name, OK, f"{f.probe.accelerate} ({how})")


def _device(f: Facts) -> Item:
    name = "device"
    if f.probe is None or f.probe.error:
        return Item(name, WAIT, "waits for the kohya venv")
    flags = {"mps": "--mixed_precision=no --no_half_vae", "cpu": "--mixed_precision=no (slow: hours per run)",
             "cuda": "--mixed_precision=fp16 --sdpa", "cuda-bf16": "--mixed_precision=bf16 --sdpa"}[f.probe.device]
    torch = f"torch {f.probe.torch}" if f.probe.torch else "no torch in this venv"
    return Item(name, OK, f"{f.probe.device} ({torch}) -> {flags}")


def _model(f: Facts) -> Item:
    name = "base checkpoint"
    if f.model_error:
        return Item(name, FAIL, f"the training configuration cannot be read: {f.model_error}",
                    fix="fix that key in the file named above, then run `invoke setup` again")
    if f.pretrained_model is None:
        return Item(name, FAIL, "no base checkpoint is configured",
                    fix='set pretrained_model = "/path/to/sd15-model.safetensors" in the character\'s [training] '
                        "section (dataset/<character>/character.toml) or in kohya/train.toml")
    if not f.model_exists:
        return Item(name, FAIL, f"{f.pretrained_model} does not exist (set in {f.model_source})",
                    fix="download the SD1.5-family checkpoint there, or point pretrained_model at the file you have")
    if f.model_problem:
        return Item(name, FAIL, f.model_problem, fix="point pretrained_model at the checkpoint you mean (see above)")
    return Item(name, OK, f"{f.pretrained_model}" + (f": {f.model_family}" if f.model_family else ""))


def _tokenizer(f: Facts) -> Item:
    name = "CLIP tokenizer cache"
    if f.tokenizer_cache is None:
        return Item(name, WARN,
                    "no tokenizer cache configured; sd-scripts downloads it from the Hugging Face hub each run")
    if f.tokenizer_cached and f.bigg_needed and not f.bigg_cached:
        target = f.tokenizer_cache / tokenizers.BIGG_FOLDER
        if f.tokenizer_tried:
            return Item(name, FAIL, f"{target} could not be made", fix=f"copy a saved {tokenizers.BIGG_REPO} "
                        f"tokenizer there (vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json)")
        return Item(name, FIX, f"SDXL also needs {target} (offline, sdxl_train_network.py dies with `TypeError: "
                               f"expected str, bytes or os.PathLike object, not NoneType` without it)",
                    fix=f"setup makes it from {tokenizers.CLIP_L_FOLDER} (same vocabulary, pad id 0)",
                    actions=(Action(f"make {target} from the CLIP-L tokenizer (no network)",
                                    (f.python, "-c", tokenizers.bigg_code(f.tokenizer_cache))),))
    if f.tokenizer_cached:
        both = " and the SDXL bigG tokenizer" if f.bigg_needed else ""
        return Item(name, OK, f"{f.tokenizer_cache}{both} (runs work offline)")
    probe_ok = f.probe is not None and not f.probe.error
    missing = f.probe.missing if f.probe is not None else ()
    if probe_ok and "transformers" in f.required and "transformers" not in missing and not f.tokenizer_tried:
        target = f.tokenizer_cache / TOKENIZER_FOLDER
        code = (f"from transformers import CLIPTokenizer; "
                f"CLIPTokenizer.from_pretrained({TOKENIZER_REPO!r}).save_pretrained({str(target)!r})")
        bigg = (Action(f"make {f.tokenizer_cache / tokenizers.BIGG_FOLDER} from the CLIP-L tokenizer (no network)",
                       (f.python, "-c", tokenizers.bigg_code(f.tokenizer_cache))),) if f.bigg_needed else ()
        return Item(name, FIX, f"{f.tokenizer_cache} is empty",
                    fix=f"{f.kohya_python} -c \"{code}\" (needs network once)",
                    actions=(Action(f"save the CLIP tokenizer to {target} (needs network once)",
                                    (str(f.kohya_python), "-c", code), optional=True), *bigg))
    return Item(name, WARN, f"{f.tokenizer_cache} is empty: the first training run needs the Hugging Face hub",
                fix=f"{f.comfyui_tokenizer_note or _SET_COMFYUI}, or when online run `invoke setup` again (it saves "
                    f"openai/clip-vit-large-patch14 there), or copy a saved tokenizer to "
                    f"{f.tokenizer_cache}/openai_clip-vit-large-patch14")


_SET_COMFYUI = "set comfyui_dir to your ComfyUI (setup copies its comfy/sd1_tokenizer there)"


def _estimate(f: Facts) -> Item:
    name = "memory and time"
    if f.estimate_warning:
        return Item(name, WARN, f.estimate, fix=f.estimate_warning)
    if f.estimate:
        return Item(name, OK, f.estimate)
    if f.model_error or f.pretrained_model is None or not f.model_exists or f.model_problem:
        return Item(name, WAIT, "waits for the base checkpoint")
    if f.probe is None or f.probe.error:
        return Item(name, WAIT, "waits for the kohya venv (its device and memory)")
    return Item(name, SKIP, "not checked: no character given (`invoke setup --character <name>` estimates "
                            "that character's run)")


def _comfyui(f: Facts) -> Item:
    name = "ComfyUI (optional here)"
    if f.loras_dir is None and f.comfyui is None:
        return Item(name, OK, "not checked (--skip-comfyui)")
    problems = []
    if f.comfyui is not None:
        problems.append(f"{f.comfyui_url} does not answer ({f.comfyui})")
    if f.loras_dir is not None and not f.loras_writable:
        problems.append(f"its loras folder {f.loras_dir} is not writable")
    if problems:
        return Item(name, WARN, "; ".join(problems),
                    fix="start ComfyUI (needed for gen-reg and compare) and set comfyui_urls / comfyui_dir")
    return Item(name, OK, f"{f.comfyui_url} answers; {f.loras_dir} is writable")


def blocking(items: Iterable[Item]) -> list[Item]:
    """Items that keep setup from being done (a waiting item always waits on a fix or a FAIL above it)."""
    return [i for i in items if i.state in (FIX, FAIL, WAIT)]
