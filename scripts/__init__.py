"""Standalone pipeline scripts: each verb module runs as `python -m scripts.NAME`; noun modules are libraries."""
