"""Stand-in for sd-scripts' networks/lora.py: the module list of an SD1.5 LoRA (recorded)."""
from pathlib import Path

MODULES_FILE = Path(__file__).with_name("lora_modules.tsv")


def modules():
    """(name, in_features, out_features, is_conv) for the 72 text-encoder and 192 U-Net modules."""
    rows = []
    for line in MODULES_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, fan_in, fan_out, conv = line.split("\t")
            rows.append((name, int(fan_in), int(fan_out), conv == "1"))
    return rows
