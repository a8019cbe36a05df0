"""cfgen: generator of FPGA accelerators for cross-filter compressed binarized CNNs."""

__version__ = "0.1.0"
