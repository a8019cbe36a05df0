"""Errors the driver raises. Every one says what went wrong and what to do about it."""


class DriverError(Exception):
    """Base class of every cfgen_driver error."""


class InputError(DriverError, ValueError):
    """Images of the wrong shape, dtype or value range."""


class MetadataError(DriverError):
    """cfgen_meta.json is missing, malformed, or does not match the hardware."""


class OverlayError(DriverError):
    """The overlay (.bit + .hwh) is missing, or lacks the DMA / accelerator it needs."""


class BoardUnavailable(DriverError):
    """pynq is not installed, or no FPGA device is present (not running on a PYNQ board)."""


class BackendUnavailable(DriverError):
    """An off-board backend cannot be used here (no build folder, no g++, no generator)."""


class AcceleratorTimeout(DriverError, TimeoutError):
    """A DMA transfer or the accelerator made no progress within the timeout."""


class DMAError(DriverError):
    """The AXI DMA reported an error (status register), or the hardware broke the stream contract."""


class ClosedError(DriverError):
    """The accelerator was closed (buffers freed) or needs reset() after a timeout."""


class SimulationError(DriverError):
    """The C simulation broke the stream contract (beat count, TLAST) or failed to compile."""


class BuildFolderError(BackendUnavailable):
    """The build folder lacks a file an off-board backend needs (graph.json, graph.npz,
    hls/manifest.json), or the file is damaged."""


class DataFileError(DriverError, ValueError):
    """A data file (a CIFAR-10 python batch) is missing or malformed, or holds types that the
    restricted unpickler refuses (a pickle that would run code)."""


class WeightsError(DriverError):
    """A run-time weight file is missing, damaged or for other hardware, or the hardware's
    checksum of what it received is not the file's (docs/WEIGHTS.md)."""
