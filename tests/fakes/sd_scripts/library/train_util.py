"""Stand-in for sd-scripts' library/train_util.py: only its third-party import matters here.

Real sd-scripts imports `imagesize` at module level (the first import the seed's venv lacked,
see ../shared/fixtures/sd-scripts/fail_import_error.log); the setup tests provide it as a wheel
built inside the test, so the venv probe finds it missing and setup installs it.
"""
import imagesize  # noqa: F401  (third-party: the probe must find it)

STEP_FILE_NAME = "{}-step{:08d}"
STEP_STATE_NAME = "{}-step{:08d}-state"
LAST_STATE_NAME = "{}-state"


def optimizer_modules():
    # Function-level import like sd-scripts' get_optimizer; only used with these optimizers.
    import lion_pytorch  # noqa: F401
