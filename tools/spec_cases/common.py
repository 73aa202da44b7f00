"""Shared writer for spec-derived test cases (ONNX backend test-case layout).

Each generator in tools/spec_cases/ builds single-op models with onnx.helper
and computes the expected outputs with numpy, straight from the operator's
specification (never from onnx-run), then calls write_case(). Cases land in
testdata/spec/<name>/ as model.onnx + test_data_set_0/{input,output}_K.pb,
and ctest runs `onnx-run test` over all of them (tests/spec.cmake).

Run with the system interpreter (onnx 1.12 and numpy from Debian):
    /usr/bin/python3 tools/spec_cases/<family>.py
"""
import os
import shutil

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "spec")


def _vi(name, arr):
    if arr is None:
        return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype)
                                         if hasattr(helper, "np_dtype_to_tensor_dtype")
                                         else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype],
                                         list(arr.shape))


def write_case(name, node, inputs, outputs, opset, domain_opsets=None, initializers=None):
    """node: an onnx NodeProto (or list of them); inputs/outputs: lists of
    (name, ndarray). Inputs named in `initializers` (dict name -> ndarray)
    become initializers instead of graph inputs."""
    nodes = node if isinstance(node, list) else [node]
    inits = [numpy_helper.from_array(v, k) for k, v in (initializers or {}).items()]
    graph = helper.make_graph(nodes, name,
                              [_vi(n, a) for n, a in inputs],
                              [_vi(n, a) for n, a in outputs], initializer=inits)
    imports = [helper.make_opsetid("", opset)]
    for dom, ver in (domain_opsets or {}).items():
        imports.append(helper.make_opsetid(dom, ver))
    model = helper.make_model(graph, opset_imports=imports, producer_name="onnx-run spec_cases")
    model.ir_version = 8
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (n, a) in enumerate(inputs):
        t = numpy_helper.from_array(a, n)
        with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), "wb") as f:
            f.write(t.SerializeToString())
    for k, (n, a) in enumerate(outputs):
        t = numpy_helper.from_array(a, n)
        with open(os.path.join(d, "test_data_set_0", "output_%d.pb" % k), "wb") as f:
            f.write(t.SerializeToString())


def rng(seed):
    return np.random.default_rng(seed)
