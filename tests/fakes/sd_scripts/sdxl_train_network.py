"""Stand-in for kohya-ss/sd-scripts' sdxl_train_network.py (commit 48d368f), for tests only.

Replays ../shared/fixtures/sd-scripts-sdxl/ (README there), sharing the dataset reading, the step
loop, the checkpoint and state writing of the stand-in train_network.py. From the recordings:
- train.log: `load tokenizer from cache:` for CLIP-L and bigG, the `clip_skip will be unexpected`
  warning when --clip_skip is given, `loading U-Net from checkpoint` / `U-Net: <All keys matched
  successfully>`, `caching latents...` with --cache_latents, `caching Text Encoder outputs...` with
  --cache_text_encoder_outputs, `create LoRA for Text Encoder 1:` / `2:` / `create LoRA for Text Encoder:
  264 modules.` (logged even with --network_train_unet_only), `create LoRA for U-Net: 722 modules.`,
  `unet dtype: torch.float32, device: cpu` (train_bf16.log: `enable full bf16 training.` and
  `torch.bfloat16` with --full_bf16), then the same `running training` block, tqdm bars and
  `saving checkpoint:` lines as SD1.5;
- outputs / lora_keys.txt / lora_metadata.json: the 722 U-Net modules in SGM names
  (networks/sdxl_lora_modules.tsv, F32, BF16 with --full_bf16), no `lora_te*` modules, and the
  recorded `__metadata__` (networks/sdxl_lora_metadata_template.json: ss_base_model_version
  sdxl_base_v1-0, modelspec.architecture stable-diffusion-xl-v1-base/lora, no ss_resolution) with this
  run's values; `modelspec.encoder_layer` only when --clip_skip is given;
  an SDXL LoRA with text encoders (`lora_te1_*` / `lora_te2_*`) is not recorded: without
  --network_train_unet_only this stand-in still writes the U-Net modules only;
- fail_sdxl_trainer_on_sd15.log: a checkpoint without SDXL keys (`conditioner.embedders.1.model.`)
  fails after `loading U-Net from checkpoint` with `RuntimeError: Error(s) in loading state_dict for
  SdxlUNet2DConditionModel:` (one example key per list), exit 1;
- fail_missing_tokenizer2.log: a --tokenizer_cache_dir holding openai_clip-vit-large-patch14/ but not
  laion_CLIP-ViT-bigG-14-laion2B-39B-b160k/ fails with `TypeError: expected str, bytes or os.PathLike
  object, not NoneType`, exit 1 (the recording was offline; a cache with neither folder is taken as
  online here, which is not recorded);
- fail_bucket_reso.log: the shared min_bucket_reso assertion.
Read from the real source, not recorded: `--v2` is an AssertionError (verify_sdxl_training_args), and
`--cache_text_encoder_outputs` without `--network_train_unet_only` is the AssertionError "network for
Text Encoder cannot be trained with caching Text Encoder outputs". Honest shrink as in
train_network.py: every in/out feature size is 8 (STANDIN_FULL_SHAPES=1 writes the real ones).
"""
import os
import sys
from pathlib import Path

import train_network
from library import sdxl_train_util
from networks import lora

log = train_network.log
CLIP_L = "openai_clip-vit-large-patch14"
BIGG = "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"


def parse_args(argv):
    parser = train_network.setup_parser()
    sdxl_train_util.add_sdxl_training_arguments(parser)
    return parser.parse_args(argv)


def tokenizers(cache):
    if cache is None:
        return 0
    folder = Path(cache)
    if (folder / CLIP_L).is_dir():
        log("INFO", f"load tokenizer from cache: {folder / CLIP_L}", "strategy_base.py:61")
        if not (folder / BIGG).is_dir():
            print("Traceback (most recent call last):", file=sys.stderr)
            print('  File "<KOHYA_DIR>/sd-scripts/library/strategy_sdxl.py", line 25, in __init__', file=sys.stderr)
            print("TypeError: expected str, bytes or os.PathLike object, not NoneType", file=sys.stderr)
            return 1
        log("INFO", f"load tokenizer from cache: {folder / BIGG}", "strategy_base.py:61")
    return 0


def tensor_specs(dim, full_shapes):
    specs = []
    for name, real_in, real_out, _ in lora.modules(lora.SDXL_MODULES_FILE):
        fan_in, fan_out = (real_in, real_out) if full_shapes else (8, 8)
        specs.append((f"{name}.alpha", [], None))
        specs.append((f"{name}.lora_down.weight", [dim, fan_in], 0.01))
        specs.append((f"{name}.lora_up.weight", [fan_out, dim], 0.0))
    return specs


def assertion(message):
    print("Traceback (most recent call last):", file=sys.stderr)
    print(f"AssertionError: {message}", file=sys.stderr)
    return 1


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if tokenizers(args.tokenizer_cache_dir):
        return 1
    train_images, reg_images = train_network.load_dataset(args.dataset_config)
    if args.v2:
        return assertion("v2 cannot be enabled in SDXL training / SDXL学習ではv2を有効にすることはできません")
    sdxl_train_util.verify_sdxl_training_args(args, log)
    if train_images == 0:
        return train_network.no_data()
    log("INFO", "preparing accelerator", "train_network.py:593")
    print("accelerator device: cpu", flush=True)
    if not os.path.exists(args.pretrained_model_name_or_path):
        return train_network.missing_model(args)
    log("INFO", "loading model for process 0/1", "sdxl_train_util.py:32")
    log("INFO", f"load StableDiffusion checkpoint: {args.pretrained_model_name_or_path}", "sdxl_train_util.py:73")
    log("INFO", "building U-Net", "sdxl_model_util.py:198")
    log("INFO", "loading U-Net from checkpoint", "sdxl_model_util.py:202")
    keys = train_network.read_model_keys(args.pretrained_model_name_or_path)
    if keys is not None and not any(k.startswith("conditioner.embedders.1.model.") for k in keys):
        return train_network.state_dict_error("SdxlUNet2DConditionModel",
                                              ["input_blocks.2.1.transformer_blocks.0.attn2.to_out.0.weight"],
                                              ["output_blocks.0.1.transformer_blocks.7.attn2.to_out.0.bias"])
    log("INFO", "U-Net: <All keys matched successfully>", "sdxl_model_util.py:208")
    log("INFO", "text encoder 1: <All keys matched successfully>", "sdxl_model_util.py:278")
    log("INFO", "text encoder 2: <All keys matched successfully>", "sdxl_model_util.py:282")
    log("INFO", "VAE: <All keys matched successfully>", "sdxl_model_util.py:293")
    if args.cache_latents:
        log("INFO", "caching latents...", "train_util.py:1170")
    if args.cache_text_encoder_outputs:
        if not args.network_train_unet_only:
            return assertion("network for Text Encoder cannot be trained with caching Text Encoder outputs / "
                             "Text Encoderの出力をキャッシュしながら"
                             "Text Encoderのネットワークを学習することはできません")
        log("INFO", "caching Text Encoder outputs...", "train_util.py:1348")
    print(f"import network module: {args.network_module}", flush=True)
    log("INFO", f"create LoRA network. base dim (rank): {args.network_dim}, alpha: {float(args.network_alpha)}",
        "lora.py:935")
    log("INFO", "create LoRA for Text Encoder 1:", "lora.py:1027")
    log("INFO", "create LoRA for Text Encoder 2:", "lora.py:1027")
    log("INFO", "create LoRA for Text Encoder: 264 modules.", "lora.py:1035")
    log("INFO", "create LoRA for U-Net: 722 modules.", "lora.py:1043")
    print("prepare optimizer, data loader etc.", flush=True)
    bf16 = bool(args.full_bf16)
    before = [("INFO", f"unet dtype: {'torch.bfloat16' if bf16 else 'torch.float32'}, device: cpu",
               "train_network.py:1347")]
    if bf16:
        before.insert(0, ("INFO", "enable full bf16 training.", "train_network.py:1293"))
    specs = tensor_specs(args.network_dim, os.environ.get("STANDIN_FULL_SHAPES") == "1")
    template = "sdxl_lora_metadata_template.json"
    dtype = "BF16" if bf16 else "F32"
    return train_network.run_training(args, specs, train_images, reg_images, template, dtype, before)


if __name__ == "__main__":
    sys.exit(main())
