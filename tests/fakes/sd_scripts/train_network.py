"""Stand-in for kohya-ss/sd-scripts' train_network.py (commit 48d368f), for tests only.

It runs in the venv the tests build (stdlib plus the test-built `imagesize` and fake
`accelerate`), parses the flags our command uses (argparse: an unknown flag is an error, as in
sd-scripts; each flag is one textual `parser.add_argument("--flag", ...)` here or in
library/train_util.py / library/config_util.py, like the real source, because setup greps for
them), and replays what the recordings in ../shared/fixtures/sd-scripts/ show:
rich-style log records and tqdm bars on stderr (tqdm redraws with `\\r`), `print()` lines on
stdout (`accelerator device: cpu`, the `running training` block, `epoch 1/1`,
`saving checkpoint: <path>`); a dataset TOML with a key outside sd-scripts' schema fails like
fail_bad_toml_key.log (exit 1); an image_dir that is missing or empty gives "No data found" and
exit 0 with nothing written (fail_missing_dataset.log); a missing base checkpoint fails like
fail_missing_model.log (exit 1); an SDXL checkpoint (header keys `conditioner.*`) fails at U-Net loading
like ../shared/fixtures/sd-scripts-sdxl/fail_sd15_trainer_on_sdxl_no_te_cache.log (one example key per list
instead of ~100 kB of them, exit 1); `--cache_text_encoder_outputs` is an argparse error as in
fail_sd15_trainer_on_sdxl.log (the flag exists only in library/sdxl_train_util.py); a dataset with
enable_bucket and a resolution under min_bucket_reso (default 256) fails like fail_bucket_reso.log.
An image whose size cannot be read (a PNG without a valid IHDR: corrupt, truncated, not a PNG) gets
sd-scripts' `failed to get image size: <path>, error: cannot identify image file '<path>'` WARNING,
then the ZeroDivisionError traceback from select_bucket, exit 1: READ FROM SOURCE, not recorded (see
library/train_util.py get_image_size and zero_division below).
The loss is synthetic (0.21 + 0.99**step: 1.21 at the start, falling towards 0.21 and never below
zero, so a 920-step run plots like a loss and not like -7.99) and only appears as the `avr_loss=` postfix.

LoRA files go to `<output_dir>/<output_name>-step%08d.safetensors` every --save_every_n_steps
and `<output_name>.safetensors` at the end, with the recorded 264-module key layout
(networks/lora_modules.tsv: `lora_down.weight`, `lora_up.weight`, `alpha` per module, F32) and
the recorded `__metadata__` (networks/lora_metadata_template.json, every value a string) with
this run's dim, alpha, steps, output name, trigger phrase and training comment. Honest shrink:
the rank is --network_dim as given, but every in/out feature size is 8 instead of the real
320..5120 so a file is ~0.5 MB rather than 75 MB (STANDIN_FULL_SHAPES=1 writes the real shapes).
The file is written by hand in the safetensors format (8-byte header length, JSON header, data)
because the test venv has no `safetensors` package; the tests read it back with `safetensors`.

--save_state writes `<name>-step%08d-state/` folders at every checkpoint step, the last step
included (and `<name>-state/` at the end, before the final model) holding train_state.json
({"current_step", "current_epoch"}); with --save_last_n_steps_state N (or --save_last_n_steps) each
save then removes the state of step `step - N - 1` rounded down to a multiple of
--save_every_n_steps, logging `removing old state: <dir>`: train_util.save_and_remove_state_stepwise
as READ FROM SOURCE (48d368f), as no recording ran --save_state. --resume=<state folder> follows sd-scripts'
train_network.py as READ FROM SOURCE (no recording has a resume; issue 10 reports the same from
real runs): the step in train_state.json becomes initial_step; `max_train_steps > initial_step` is
asserted (AssertionError "max_train_steps should be greater than initial step / ...: 20 vs 20",
exit 1); with --skip_until_initial_step it logs "skipping N steps" and continues at step N+1, and
without it the step count restarts at 0 and it trains max_train_steps steps again ("initial_step = 0
# do not skip"), naming checkpoints from step 1. The "resume training from step N" log line is this
stand-in's own, not sd-scripts'.

Faults, through the STANDIN_FAIL environment variable:
  import          ModuleNotFoundError for imagesize at start-up, as fail_import_error.log
  nan:K           avr_loss becomes nan from step K on (sticky; checkpoints are still written)
  crash:K         a RuntimeError traceback after step K, exit 1
STANDIN_STEP_SECONDS (float) paces the steps so a test can stop a run part-way.
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import time
import tomllib
from pathlib import Path

if os.environ.get("STANDIN_FAIL") == "import":
    raise ModuleNotFoundError("No module named 'imagesize'", name="imagesize")

import accelerate  # noqa: F401  (third-party: real train_network.py imports it at the top)
from library import config_util, train_util
from networks import lora

HERE = Path(__file__).resolve().parent
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
GENERAL_KEYS, DATASET_KEYS, SUBSET_KEYS = config_util.GENERAL_KEYS, config_util.DATASET_KEYS, config_util.SUBSET_KEYS


def log(level, message, where):
    """One rich-style record on stderr, padded like the recorded 80-column output."""
    sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {level:<8} {message:<40} {where}\n")
    sys.stderr.flush()


def log_wrapped(level, message, where, width=80):
    """One rich record wrapped as the recordings show it (fail_missing_dataset.log): the message column
    is 80 - 29 - len(where) - 1 wide, words wrap greedily, a word longer than the column starts a new
    line and is cut at the column width, continuation lines are indented 29 and padded to 80."""
    column = width - 29 - len(where) - 1
    lines, line = [], ""
    for piece in message.split(" "):
        word = piece
        if line and len(line) + 1 + len(word) <= column:
            line = f"{line} {word}"
            continue
        if line:
            lines.append(line)
        while len(word) > column:
            lines.append(word[:column])
            word = word[column:]
        line = word
    lines.append(line)
    sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {level:<8} {lines[0]:<{column}} {where}\n")
    for rest in lines[1:]:
        sys.stderr.write(f"{' ' * 29}{rest:<{width - 29}}\n")
    sys.stderr.flush()


def zero_division(enable_bucket):
    """What follows unreadable images (sizes (0, 0)), READ FROM SOURCE like train_util.get_image_size: the
    dataset is built (config_util.py:593 make_buckets, train_util.py:1039 or 1052) and BucketManager.select_bucket
    divides by the height (train_util.py:287) before any model loads; exit 1."""
    log("INFO", "make buckets" if enable_bucket else "prepare dataset",
        f"train_util.py:{1015 if enable_bucket else 1017}")
    lib = HERE / "library"
    for line in ("Traceback (most recent call last):",
                 f'  File "{HERE / "train_network.py"}", line 1913, in <module>', "    trainer.train(args)",
                 f'  File "{HERE / "train_network.py"}", line 556, in train',
                 "    train_dataset_group, val_dataset_group = "
                 "config_util.generate_dataset_group_by_blueprint(blueprint.dataset_group)",
                 f'  File "{lib / "config_util.py"}", line 593, in generate_dataset_group_by_blueprint',
                 "    dataset.make_buckets()",
                 f'  File "{lib / "train_util.py"}", line {1039 if enable_bucket else 1052}, in make_buckets',
                 "    image_info.bucket_reso, image_info.resized_size, _ = self.bucket_manager.select_bucket(",
                 f'  File "{lib / "train_util.py"}", line 287, in select_bucket',
                 "    aspect_ratio = image_width / image_height",
                 "ZeroDivisionError: division by zero"):
        print(line, file=sys.stderr)
    sys.exit(1)


def setup_parser():
    parser = argparse.ArgumentParser()
    train_util.add_training_arguments(parser)
    config_util.add_config_arguments(parser)
    parser.add_argument("--network_module", type=str, default=None)
    parser.add_argument("--network_dim", type=int, default=None)
    parser.add_argument("--network_alpha", type=float, default=1)
    parser.add_argument("--network_dropout", type=float, default=None)
    parser.add_argument("--network_train_unet_only", action="store_true")
    parser.add_argument("--network_train_text_encoder_only", action="store_true")
    parser.add_argument("--unet_lr", type=float, default=None)
    parser.add_argument("--text_encoder_lr", type=float, default=None)
    parser.add_argument("--scale_weight_norms", type=float, default=None)
    parser.add_argument("--training_comment", type=str, default=None)
    return parser


def parse_args(argv):
    return setup_parser().parse_args(argv)


def schema_error(path):
    log("ERROR", "Invalid user config / ユーザ設定の形式が正しくないようです", "config_util.py:375")
    print("Traceback (most recent call last):", file=sys.stderr)
    print('  File "train_network.py", line 1913, in <module>', file=sys.stderr)
    print(f"voluptuous.error.MultipleInvalid: extra keys not allowed @ data{path}", file=sys.stderr)
    sys.exit(1)


def bucket_error():
    """../shared/fixtures/sd-scripts-sdxl/fail_bucket_reso.log: train_util's assertion, before any model loads."""
    print("Traceback (most recent call last):", file=sys.stderr)
    print('  File "<KOHYA_DIR>/sd-scripts/library/train_util.py", line 767, in adjust_min_max_bucket_reso_by_steps',
          file=sys.stderr)
    print("    min(resolution) >= min_bucket_reso", file=sys.stderr)
    print("AssertionError: min_bucket_reso must be equal or less than resolution / min_bucket_resoは最小解像度より"
          "大きくできません。解像度を大きくするかmin_bucket_resoを小さくしてください", file=sys.stderr)
    sys.exit(1)


def read_model_keys(path):
    """Tensor names of a safetensors file from its header (None when it is not one): what the loaders check."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100 * 1024 * 1024:
                return None
            return [k for k in json.loads(handle.read(length)) if k != "__metadata__"]
    except (OSError, ValueError, struct.error):
        return None


def state_dict_error(model_class, unexpected, missing, mismatches=(), missing_first=False):
    """A U-Net load failure as recorded (fail_sdxl_trainer_on_sd15.log / fail_sd15_trainer_on_sdxl_no_te_cache.log),
    with one example key per list instead of ~100 kB of them."""
    print("Traceback (most recent call last):", file=sys.stderr)
    print(f"RuntimeError: Error(s) in loading state_dict for {model_class}:", file=sys.stderr)
    lines = ["\tUnexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected),
             "\tMissing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing)]
    for line in (lines[::-1] if missing_first else lines):
        print(line, file=sys.stderr)
    for line in mismatches:
        print(f"\tsize mismatch for {line}", file=sys.stderr)
    return 1


def load_dataset(path):
    log("INFO", f"Loading dataset config from {path}", "train_network.py:519")
    config = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    for key in config.get("general", {}):
        if key not in GENERAL_KEYS:
            schema_error(f"['general']['{key}']")
    general = config.get("general", {})
    if general.get("enable_bucket") and int(general.get("min_bucket_reso", 256)) > int(general.get("resolution", 512)):
        bucket_error()
    subsets = []
    for d, dataset in enumerate(config.get("datasets", [])):
        for key in dataset:
            if key not in DATASET_KEYS:
                schema_error(f"['datasets'][{d}]['{key}']")
        for s, subset in enumerate(dataset.get("subsets", [])):
            for key in subset:
                if key not in SUBSET_KEYS:
                    schema_error(f"['datasets'][{d}]['subsets'][{s}]['{key}']")
            subsets.append(subset)
    train = reg = 0
    found = []
    for subset in subsets:
        folder = Path(subset["image_dir"])
        if not folder.is_dir():
            log("WARNING", f"not directory: {folder}", "train_util.py:2069")
            continue
        images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            log("WARNING", f"ignore subset with image_dir='{folder}': no images found", "train_util.py:2073")
            continue
        log("INFO", f"found directory {folder} contains {len(images)} image files", "train_util.py:2059")
        found += sorted(images)
        count = len(images) * int(subset.get("num_repeats", 1))
        if subset.get("is_reg"):
            reg += count
        else:
            train += count
    log("INFO", f"{train} train images with repeats.", "train_util.py:2158")
    log("INFO", f"{reg} reg images with repeats.", "train_util.py:2162")
    if found:
        log("INFO", "loading image sizes.", "train_util.py:992")
        warn = lambda text: log_wrapped("WARNING", text, "train_util.py:1489")  # noqa: E731
        sizes = [train_util.get_image_size(str(path), warn) for path in found]
        if (0, 0) in sizes:
            zero_division(general.get("enable_bucket", False))
    return train, reg


def tensor_specs(dim, full_shapes):
    """(name, shape, values) for every tensor of the recorded layout."""
    specs = []
    for name, module_in, module_out, conv in lora.modules():
        fan_in, fan_out = (module_in, module_out) if full_shapes else (8, 8)
        tail = [1, 1] if conv else []
        specs.append((f"{name}.alpha", [], None))
        specs.append((f"{name}.lora_down.weight", [dim, fan_in, *tail], 0.01))
        specs.append((f"{name}.lora_up.weight", [fan_out, dim, *tail], 0.0))
    return specs


def write_safetensors(path, specs, alpha, metadata, dtype="F32"):
    """Write the safetensors format by hand (no `safetensors` in this venv), temp name + rename.

    BF16 values are the upper two bytes of each little-endian float32 (a truncation, as bfloat16 is)."""
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    for name, shape, value in sorted(specs):
        count = math.prod(shape) if shape else 1
        data = struct.pack(f"<{count}f", *([alpha if value is None else value] * count))
        if dtype == "BF16":
            data = b"".join(data[i + 2:i + 4] for i in range(0, len(data), 4))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        for chunk in chunks:
            handle.write(chunk)
    os.replace(temp, path)


def metadata_for(args, step, epoch, started, train_images, reg_images, template_name="lora_metadata_template.json"):
    template = json.loads((HERE / "networks" / template_name).read_text())
    meta = dict(template)
    meta.update({
        "ss_network_dim": str(args.network_dim), "ss_network_alpha": str(float(args.network_alpha)),
        "ss_network_module": args.network_module, "ss_steps": str(step), "ss_epoch": str(epoch),
        "ss_output_name": args.output_name, "modelspec.title": args.output_name,
        "ss_max_train_steps": str(args.max_train_steps), "ss_learning_rate": str(args.learning_rate),
        "ss_seed": str(args.seed), "ss_clip_skip": str(args.clip_skip),
        "ss_mixed_precision": str(args.mixed_precision),
        "ss_training_comment": str(args.training_comment),
        "ss_sd_model_name": os.path.basename(args.pretrained_model_name_or_path),
        "ss_num_train_images": str(train_images), "ss_num_reg_images": str(reg_images),
        "ss_training_started_at": str(started), "ss_training_finished_at": str(time.time()),
        "modelspec.date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    if args.metadata_trigger_phrase:
        meta["modelspec.trigger_phrase"] = args.metadata_trigger_phrase
    if args.clip_skip is None:
        meta.pop("modelspec.encoder_layer", None)  # the SDXL recording has it from --clip_skip=2
    return {k: str(v) for k, v in meta.items()}


def bar(step, total, elapsed, loss):
    """A tqdm line as recorded: `steps:  20%|██        | 1/5 [00:17<01:09, 17.46s/it, avr_loss=1.21]`."""
    filled = int(10 * step / total)
    rate = f"{elapsed / step:5.2f}s/it" if step else "?it/s"
    left = elapsed / step * (total - step) if step else None

    def clock(seconds):
        return "?" if seconds is None else f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"
    postfix = "" if loss is None else f", avr_loss={loss:.3g}"
    return (f"steps: {int(100 * step / total):3d}%|{'█' * filled}{' ' * (10 - filled)}| {step}/{total} "
            f"[{clock(elapsed)}<{clock(left)}, {rate}{postfix}]")


def save_state_stepwise(args, output, step):
    """train_util.save_and_remove_state_stepwise, READ FROM SOURCE: the step state (also at the last step,
    which the step loop saves like any other), then at most one older state removed (library/train_util.py)."""
    log("INFO", f"saving state at step {step}", "train_util.py:5963")
    save_state(output / train_util.STEP_STATE_NAME.format(args.output_name, step), step)
    remove = train_util.remove_step_no(args, step)
    if remove is not None:
        old = output / train_util.STEP_STATE_NAME.format(args.output_name, remove)
        if old.exists():
            log("INFO", f"removing old state: {old}", "train_util.py:5982")
            shutil.rmtree(old)


def save_state(folder, step):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_state.json").write_text(json.dumps({"current_step": step, "current_epoch": 1}))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log("INFO", "Using v1 tokenizer", "strategy_sd.py:26")
    train_images, reg_images = load_dataset(args.dataset_config)
    if train_images == 0:
        return no_data()
    log("INFO", "preparing accelerator", "train_network.py:593")
    print("accelerator device: cpu", flush=True)
    if not os.path.exists(args.pretrained_model_name_or_path):
        return missing_model(args)
    keys = read_model_keys(args.pretrained_model_name_or_path)
    if keys is not None and any(k.startswith("conditioner.") for k in keys):
        # fail_sd15_trainer_on_sdxl_no_te_cache.log: the SD1.5 loader reads the SDXL file and fails at the U-Net.
        return state_dict_error("UNet2DConditionModel", ["input_blocks.7.1.transformer_blocks.9.attn1.to_q.weight"],
                                ["down_blocks.0.attentions.0.proj_in.weight"],
                                ["mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight: copying a param with "
                                 "shape torch.Size([1280, 2048]) from checkpoint, the shape in current model is "
                                 "torch.Size([1280, 768])."], missing_first=True)
    print(f"import network module: {args.network_module}", flush=True)
    log("INFO", f"create LoRA network. base dim (rank): {args.network_dim}, alpha: {float(args.network_alpha)}",
        "lora.py:935")
    print("prepare optimizer, data loader etc.", flush=True)
    specs = tensor_specs(args.network_dim, os.environ.get("STANDIN_FULL_SHAPES") == "1")
    return run_training(args, specs, train_images, reg_images, "lora_metadata_template.json")


def no_data():
    log("ERROR", "No data found. Please verify arguments (train_data_dir must be the parent of "
        "folders with images)", "train_network.py:576")
    return 0


def missing_model(args):
    print("Traceback (most recent call last):", file=sys.stderr)
    print(f'ValueError: The provided pretrained_model_name_or_path "{args.pretrained_model_name_or_path}" '
          "is neither a valid local path nor a valid repo id. Please check the parameter.", file=sys.stderr)
    return 1


def run_training(args, specs, train_images, reg_images, template, dtype="F32", before_steps=()):
    """The `running training` block, the steps, the checkpoints and state folders
    (shared with sdxl_train_network.py)."""
    fail = os.environ.get("STANDIN_FAIL", "")
    pace = float(os.environ.get("STANDIN_STEP_SECONDS", "0") or 0)
    total = args.max_train_steps
    first = 1
    if args.resume:
        state = json.loads((Path(args.resume) / "train_state.json").read_text())
        initial_step = int(state["current_step"])
        log("INFO", f"resume training from step {initial_step}", "train_network.py:1260")
        if initial_step > 0 and not total > initial_step:
            sys.stderr.write("Traceback (most recent call last):\n  File \"train_network.py\", line 1290\n"
                             "AssertionError: max_train_steps should be greater than initial step / "
                             "max_train_stepsは初期ステップより大きい必要があります: "
                             f"{total} vs {initial_step}\n")
            return 1
        if args.skip_until_initial_step:
            log("INFO", f"skipping {initial_step} steps / {initial_step}ステップをスキップします",
                "train_network.py:1309")
            first = initial_step + 1
    print("running training / 学習開始", flush=True)
    print(f"  num train images * repeats / 学習画像の数×繰り返し回数: {train_images}", flush=True)
    print(f"  num reg images / 正則化画像の数: {reg_images}", flush=True)
    print(f"  total optimization steps / 学習ステップ数: {total}", flush=True)
    for level, message, where in before_steps:
        log(level, message, where)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()

    def save(path, step, epoch):
        sys.stderr.write("\n")
        print(f"saving checkpoint: {path}", flush=True)
        write_safetensors(path, specs, args.network_alpha,
                          metadata_for(args, step, epoch, started, train_images, reg_images, template), dtype)

    sys.stderr.write("\n" + bar(first - 1, total, 0.0, None))
    sys.stderr.flush()
    print("epoch 1/1", flush=True)
    kind, _, at = fail.partition(":")
    nan_from = int(at) if kind == "nan" else None
    crash_after = int(at) if kind == "crash" else None
    loss = None
    for step in range(first, total + 1):
        if pace:
            time.sleep(pace)
        elapsed = time.time() - started + 1e-3
        sys.stderr.write("\r" + bar(step, total, elapsed, loss))
        loss = float("nan") if nan_from is not None and step >= nan_from else 0.21 + 0.99 ** step
        sys.stderr.write("\r" + bar(step, total, elapsed, loss))
        sys.stderr.flush()
        if crash_after is not None and step >= crash_after:
            sys.stderr.write("\nTraceback (most recent call last):\n  File \"train_network.py\", line 1460\n"
                             "RuntimeError: stand-in crash requested by STANDIN_FAIL\n")
            return 1
        if args.save_every_n_steps and step % args.save_every_n_steps == 0:
            save(output / (train_util.STEP_FILE_NAME.format(args.output_name, step) + ".safetensors"), step, 0)
            if args.save_state:
                save_state_stepwise(args, output, step)
    if args.save_state:  # train_network.py: save_state_on_train_end, then the final model
        log("INFO", "saving last state.", "train_util.py:5991")
        save_state(output / train_util.LAST_STATE_NAME.format(args.output_name), total)
    save(output / f"{args.output_name}.safetensors", total, 1)
    log("INFO", "model saved.", "train_network.py:1729")
    sys.stderr.write("\n" + bar(total, total, time.time() - started + 1e-3, loss) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
