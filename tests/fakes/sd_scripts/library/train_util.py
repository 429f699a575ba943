"""Stand-in for sd-scripts' library/train_util.py: only its third-party import matters here.

Real sd-scripts imports `imagesize` at module level (the first import the seed's venv lacked,
see ../shared/fixtures/sd-scripts/fail_import_error.log); the setup tests provide it as a wheel
built inside the test, so the venv probe finds it missing and setup installs it. The common
flags are defined here, one textual `parser.add_argument("--flag", ...)` per flag like the real
file, so setup's check that every flag we pass exists in the checkout finds them.
`--v_parameterization` and `--zero_terminal_snr` are READ FROM SOURCE (library/train_util.py
add_training_arguments; no recorded command uses them; the recorded LoRA metadata's
`ss_zero_terminal_snr: "False"` shows the real run had the argument).
"""
import imagesize  # noqa: F401  (third-party: the probe must find it)

STEP_FILE_NAME = "{}-step{:08d}"
STEP_STATE_NAME = "{}-step{:08d}-state"
LAST_STATE_NAME = "{}-state"


def remove_step_no(args, step_no):
    """The step state save_and_remove_state_stepwise removes after saving `step_no`, or None.

    READ FROM SOURCE (library/train_util.py at 48d368f; no recording ran --save_state): `last_n_steps =
    args.save_last_n_steps_state if args.save_last_n_steps_state else args.save_last_n_steps`; then
    `remove_step_no = step_no - last_n_steps - 1`, rounded down to a multiple of save_every_n_steps, and
    the folder `STEP_STATE_NAME.format(name, remove_step_no)` is removed when that is > 0 and it exists
    (logged as `removing old state: <dir>`). One folder per save, never the one just written."""
    last_n_steps = args.save_last_n_steps_state if args.save_last_n_steps_state else args.save_last_n_steps
    if last_n_steps is None:
        return None
    remove = step_no - last_n_steps - 1
    remove -= remove % args.save_every_n_steps
    return remove if remove > 0 else None


def optimizer_modules():
    # Function-level import like sd-scripts' get_optimizer; only used with these optimizers.
    import lion_pytorch  # noqa: F401


def add_training_arguments(parser):
    parser.add_argument("--pretrained_model_name_or_path", type=str, default=None)
    parser.add_argument("--output_dir", type=str, default=None)
    parser.add_argument("--output_name", type=str, default=None)
    parser.add_argument("--save_model_as", type=str, default=None)
    parser.add_argument("--save_precision", type=str, default=None)
    parser.add_argument("--optimizer_type", type=str, default="")
    parser.add_argument("--mixed_precision", type=str, default="no")
    parser.add_argument("--tokenizer_cache_dir", type=str, default=None)
    parser.add_argument("--metadata_trigger_phrase", type=str, default=None)
    parser.add_argument("--resume", type=str, default=None)
    parser.add_argument("--lr_scheduler", type=str, default="constant")
    parser.add_argument("--max_train_steps", type=int, default=1600)
    parser.add_argument("--save_every_n_steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--clip_skip", type=int, default=None)
    parser.add_argument("--train_batch_size", type=int, default=1)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--lr_warmup_steps", type=int, default=0)
    parser.add_argument("--max_data_loader_n_workers", type=int, default=8)
    parser.add_argument("--max_token_length", type=int, default=None)
    parser.add_argument("--lr_scheduler_num_cycles", type=int, default=1)
    parser.add_argument("--learning_rate", type=float, default=2.0e-6)
    parser.add_argument("--max_grad_norm", type=float, default=1.0)
    parser.add_argument("--noise_offset", type=float, default=None)
    parser.add_argument("--min_snr_gamma", type=float, default=None)
    parser.add_argument("--prior_loss_weight", type=float, default=1.0)
    parser.add_argument("--no_half_vae", action="store_true")
    parser.add_argument("--console_log_simple", action="store_true")
    parser.add_argument("--save_state", action="store_true")
    parser.add_argument("--save_last_n_steps", type=int, default=None)
    parser.add_argument("--save_last_n_steps_state", type=int, default=None)
    parser.add_argument("--skip_until_initial_step", action="store_true")
    parser.add_argument("--sdpa", action="store_true")
    parser.add_argument("--xformers", action="store_true")
    parser.add_argument("--cache_latents", action="store_true")
    parser.add_argument("--cache_latents_to_disk", action="store_true")
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--persistent_data_loader_workers", action="store_true")
    parser.add_argument("--full_fp16", action="store_true")
    parser.add_argument("--full_bf16", action="store_true")
    parser.add_argument("--v2", action="store_true")
    parser.add_argument("--v_parameterization", action="store_true")
    parser.add_argument("--zero_terminal_snr", action="store_true")
    parser.add_argument("--lowram", action="store_true")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def get_image_size(image_path, warn):
    """BaseDataset.get_image_size as READ FROM SOURCE (no recording has a corrupt image): sd-scripts'
    library/train_util.py at 48d368f, lines 1478-1491, asks `imagesize.get` first; when that gives no
    size it falls back to PIL's `Image.open`, and when PIL raises too it logs the WARNING
    `failed to get image size: <path>, error: <exception>` (line 1489) and returns (0, 0), which
    `select_bucket` divides by later. This venv has neither the real imagesize nor PIL, so a PNG's size
    comes from its IHDR chunk (what imagesize reads), and a file without a readable one stands for a
    file PIL cannot open either: the exception text is PIL's UnidentifiedImageError,
    `cannot identify image file '<path>'`. Other formats are taken as readable."""
    if not image_path.lower().endswith(".png"):
        return (1, 1)
    with open(image_path, "rb") as handle:
        head = handle.read(24)
    if head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if width > 0 and height > 0:
            return (width, height)
    warn(f"failed to get image size: {image_path}, error: cannot identify image file {image_path!r}")
    return (0, 0)
