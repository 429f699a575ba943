"""Stand-in for sd-scripts' library/sdxl_train_util.py: the SDXL-only flags and their checks.

`--cache_text_encoder_outputs` is defined only here, as in the real file, which is why the SD1.5
train_network.py rejects it in argparse (../shared/fixtures/sd-scripts-sdxl/fail_sd15_trainer_on_sdxl.log).
The clip_skip warning text and its place (sdxl_train_util.py:352) are from the recorded train.log;
the v2 assertion comes from reading the real source (verify_sdxl_training_args), not a recording.
"""


def add_sdxl_training_arguments(parser):
    parser.add_argument("--cache_text_encoder_outputs", action="store_true")
    parser.add_argument("--cache_text_encoder_outputs_to_disk", action="store_true")


def verify_sdxl_training_args(args, log):
    assert not args.v2, "v2 cannot be enabled in SDXL training / SDXL学習ではv2を有効にすることはできません"
    if args.clip_skip is not None:
        log("WARNING", "clip_skip will be unexpected / SDXL学習ではclip_skipは動作しません", "sdxl_train_util.py:352")
