"""The package's version (``flask_pbx365.__version__``), on its own so that low layers can read it."""
__version__ = "0.2.0"
