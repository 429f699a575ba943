"""In-process stand-ins for external programs (ComfyUI, sd-scripts) used by the tests."""
