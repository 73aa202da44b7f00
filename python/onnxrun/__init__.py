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
from ._onnxrun import (Error, InputError, ModelError, Session, UnsupportedError, ValueInfo,
                       load_tensor, save_tensor, version)

__version__ = version
__all__ = ["Session", "ValueInfo", "Error", "InputError", "UnsupportedError", "ModelError",
           "load_tensor", "save_tensor", "version"]
