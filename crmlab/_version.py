"""crmlab's version, at the bottom of the layers so every module may state it."""
__version__ = "0.1.0"
