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


def _tensor_type(dtype):
    return (helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            if hasattr(helper, "np_dtype_to_tensor_dtype")
            else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(dtype)])


class Map:
    """A map value for write_case: keys (a 1-D array of an integer type or
    of str) and values (an array whose dim 0 is the key count; value i is
    values[i], a scalar for a 1-D array). A list of Map is a sequence of
    maps (ZipMap's output)."""

    def __init__(self, keys, values, key_dtype=None):
        self.keys = np.asarray(keys, dtype=key_dtype if key_dtype is not None
                               else (object if len(keys) and isinstance(keys[0], str) else np.int64))
        self.values = np.asarray(values)
        assert len(self.keys) == len(self.values)

    def key_type(self):
        if self.keys.dtype == object or self.keys.dtype.kind == "U":
            return onnx.TensorProto.STRING
        return _tensor_type(self.keys.dtype)

    def value_type(self):
        if self.values.dtype == object or self.values.dtype.kind == "U":
            return onnx.TensorProto.STRING
        return _tensor_type(self.values.dtype)

    def type_proto(self):
        tp = onnx.TypeProto()
        tp.map_type.key_type = self.key_type()
        tp.map_type.value_type.tensor_type.elem_type = self.value_type()
        return tp

    def proto(self, name=""):
        """onnx.MapProto: key_type, the keys, a SequenceProto of one tensor per key."""
        m = onnx.MapProto()
        if name:
            m.name = name
        m.key_type = self.key_type()
        if m.key_type == onnx.TensorProto.STRING:
            m.string_keys.extend(str(k).encode() for k in self.keys)
        else:
            m.keys.extend(int(k) for k in self.keys)
        m.values.elem_type = onnx.SequenceProto.TENSOR
        strs = self.value_type() == onnx.TensorProto.STRING
        vals = self.values.astype(object) if strs else self.values
        for v in vals:
            m.values.tensor_values.append(numpy_helper.from_array(np.array(v, dtype=vals.dtype)))
        return m


def _vi(name, arr):
    if arr is None:
        return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
    if isinstance(arr, Map):
        return helper.make_value_info(name, arr.type_proto())
    if isinstance(arr, list):  # a sequence of maps
        assert arr and all(isinstance(m, Map) for m in arr), "lists must hold Map values"
        return helper.make_value_info(name, helper.make_sequence_type_proto(arr[0].type_proto()))
    return helper.make_tensor_value_info(name, _tensor_type(arr.dtype), list(arr.shape))


def _value_pb(name, a):
    """Serialized TensorProto, MapProto, or SequenceProto of maps."""
    if isinstance(a, Map):
        return a.proto(name).SerializeToString()
    if isinstance(a, list):
        seq = onnx.SequenceProto()
        seq.name = name
        seq.elem_type = onnx.SequenceProto.MAP
        for m in a:
            seq.map_values.append(m.proto())
        return seq.SerializeToString()
    return numpy_helper.from_array(a, name).SerializeToString()


def write_case(name, node, inputs, outputs, opset, domain_opsets=None, initializers=None):
    """node: an onnx NodeProto (or list of them); inputs/outputs: lists of
    (name, value): an ndarray, a Map, or a list of Map (a sequence of maps). Inputs named in `initializers` (dict name -> ndarray)
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
        with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), "wb") as f:
            f.write(_value_pb(n, a))
    for k, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", "output_%d.pb" % k), "wb") as f:
            f.write(_value_pb(n, a))


def rng(seed):
    return np.random.default_rng(seed)
