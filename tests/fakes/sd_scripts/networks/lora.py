"""Stand-in for sd-scripts' networks/lora.py: the module lists of the recorded SD1.5 and SDXL LoRAs."""
from pathlib import Path

MODULES_FILE = Path(__file__).with_name("lora_modules.tsv")
SDXL_MODULES_FILE = Path(__file__).with_name("sdxl_lora_modules.tsv")


def modules(path=MODULES_FILE):
    """(name, in_features, out_features, is_conv): SD1.5's 72 text-encoder + 192 U-Net modules, or SDXL's 722."""
    rows = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, fan_in, fan_out, conv = line.split("\t")
            rows.append((name, int(fan_in), int(fan_out), conv == "1"))
    return rows
