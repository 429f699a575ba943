"""Stand-in `lion_pytorch` (pip name lion-pytorch): the module-to-package mapping under test."""
__version__ = "0.2.3"


class Lion:
    pass
