"""ivtx: provable clobber-register analysis and paravirtualization of IA-64 IVT code."""

__version__ = "0.1.0"
