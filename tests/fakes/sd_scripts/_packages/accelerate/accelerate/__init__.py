"""Fake `accelerate` for the tests (the real one pulls in torch; it cannot be installed offline).

Only `accelerate launch [launch flags] SCRIPT ARGS...` is honoured: the launch flags are parsed
(unknown ones are an error, like accelerate's argparse) and SCRIPT is run with this venv's python
and the given arguments, in the current folder; a failing script ends with accelerate's recorded
`subprocess.CalledProcessError` traceback and exit status 1.
"""
__version__ = "1.6.0"
