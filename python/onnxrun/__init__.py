"""onnxrun: run ONNX models on the CPU with onnx-run, from Python and NumPy.

    import numpy as np, onnxrun
    s = onnxrun.Session("model.onnx", threads=4)       # or the model's bytes
    print(s.inputs)     # [ValueInfo(name='x', dtype=dtype('float32'), shape=['N', 3, 224, 224])]
    (y,) = s.run(None, {"x": np.zeros((1, 3, 224, 224), np.float32)})

Session.run mirrors onnxruntime.InferenceSession.run. Inputs that are
C-contiguous arrays of the input's dtype are read in place; outputs are
NumPy arrays over the engine's own buffers (no copy). Errors are raised as
onnxrun.Error (InputError, UnsupportedError, ModelError are subclasses)
carrying the engine's message. The GIL is released while a model loads and
runs; threads sharing one Session run it in parallel (each concurrent run
has its own plan instance; the weights are shared), as do different Sessions.

onnxrun.dask runs a model over Dask arrays and bags of files on a cluster.
"""
import os as _os

# OpenMP workers that spin long between parallel regions stall every region
# on a busy, shared host; sleeping ones pay a wake-up per region. A short
# bounded spin (ONR_SPIN_US in onnxrun.h, 250 us, then sleep) keeps most of
# the speed on a quiet machine and never spins while a session sits idle
# (the header's "Waiting threads" explains it). libgomp counts its spin in
# PAUSE instructions, whose latency differs between CPUs, so _spin (a module
# without libgomp) measures the count, as the CLI does. libgomp reads the
# policy once, when it is first loaded (here, with the extension below,
# unless another module loaded it earlier), so it is set here unless the
# user chose one.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    from . import _spin
    _os.environ["GOMP_SPINCOUNT"] = str(_spin.spincount())

from ._onnxrun import (Error, InputError, ModelError, Session, UnsupportedError, ValueInfo,
                       load_tensor, save_tensor, version)

__version__ = version
__all__ = ["Session", "ValueInfo", "Error", "InputError", "UnsupportedError", "ModelError",
           "load_tensor", "save_tensor", "version"]
