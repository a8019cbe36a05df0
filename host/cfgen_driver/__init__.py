"""cfgen_driver: run a cfgen accelerator on a PYNQ board, or the same API off-board on the
HLS C simulation or the golden model. numpy only (pynq on the board, imported lazily).

    from cfgen_driver import Accelerator
    acc = Accelerator.open("package/")        # backend='auto' | 'board' | 'csim' | 'golden'
    pred = acc.run(images_uint8_nhwc)         # .classes .logits .ints .names
    acc.throughput_test(images)
"""

from . import cifar
from .accelerator import BACKENDS, Accelerator, Prediction
from .errors import (AcceleratorTimeout, BackendUnavailable, BoardUnavailable, BuildFolderError, ClosedError,
                     DataFileError, DMAError, DriverError, InputError, MetadataError, OverlayError,
                     SimulationError, WeightsError)
from .meta import load as load_meta
from .packing import pack_frames, unpack_frames

__version__ = "0.1.0"

__all__ = ["Accelerator", "Prediction", "BACKENDS", "load_meta", "pack_frames", "unpack_frames",
           "DriverError", "InputError", "MetadataError", "OverlayError", "BoardUnavailable",
           "BackendUnavailable", "AcceleratorTimeout", "DMAError", "ClosedError", "SimulationError",
           "BuildFolderError", "DataFileError", "WeightsError"]
