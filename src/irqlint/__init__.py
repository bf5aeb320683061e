"""irqlint: static detection of interrupt-path concurrency bugs in kernel-style C."""

__version__ = "0.1.0"
