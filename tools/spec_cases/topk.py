"""Spec-derived cases for TopK beyond the three of the ONNX 1.12 suite:
opset 1 (k attribute), 10 (k input), 11 (largest/sorted, integer types) and
24 (the newest version), ties (the lower index first, as the specification
says), k = dim, k = 0, middle axes and every type of the schema.
Expected outputs: a stable sort of each line (numpy, kind="stable"), the
first k taken, straight from the specification's definition.
    /usr/bin/python3 tools/spec_cases/topk.py
"""
import numpy as np
from onnx import helper

from common import rng, write_case


def ref(x, k, axis, largest):
    xm = np.moveaxis(x, axis, -1)
    if largest:
        order = np.argsort(_neg_rank(xm), axis=-1, kind="stable")
    else:
        order = np.argsort(xm, axis=-1, kind="stable")
    idx = order[..., :k]
    vals = np.take_along_axis(xm, idx, axis=-1)
    return np.moveaxis(vals, -1, axis), np.moveaxis(idx, -1, axis).astype(np.int64)


def _neg_rank(xm):
    """Keys whose ascending stable sort is the descending order of xm with
    ties by lower index (exact for integers of any width)."""
    uniq, inv = np.unique(xm, return_inverse=True)
    return (len(uniq) - inv.reshape(xm.shape)).astype(np.int64)


def case(name, x, k, opset, axis=-1, largest=1, sorted_=1):
    attrs = {"axis": axis}
    if opset >= 11:
        attrs.update(largest=largest, sorted=sorted_)
    if opset < 10:
        attrs["k"] = k
        node = helper.make_node("TopK", ["x"], ["v", "i"], **attrs)
        ins = [("x", x)]
    else:
        node = helper.make_node("TopK", ["x", "k"], ["v", "i"], **attrs)
        ins = [("x", x), ("k", np.array([k], np.int64))]
    v, i = ref(x, k, axis if axis >= 0 else axis + x.ndim, largest)
    write_case("topk" + str(opset) + "_" + name, node, ins, [("v", v), ("i", i)], opset)


def main():
    r = rng(24)
    x = r.standard_normal((3, 7, 4)).astype(np.float32)
    case("attr_k", x, 3, 1)
    case("attr_k_axis1", x, 7, 1, axis=1)
    case("input_k", x, 2, 10, axis=-2)
    case("smallest_axis0", x, 2, 11, axis=0, largest=0)
    ties = np.array([[3, 1, 3, 2, 1, 3], [0, 0, 0, 0, 0, 0]], np.float32)
    case("ties_largest", ties, 4, 11)
    case("ties_smallest", ties, 4, 11, largest=0)
    case("k0", x, 0, 11)
    for dt in (np.float64, np.float16, np.int8, np.int16, np.int32, np.int64, np.uint8,
               np.uint16, np.uint32, np.uint64):
        tn = np.dtype(dt).name
        if dt in (np.float64, np.float16):
            xv = r.standard_normal((4, 9)).astype(dt)
        else:
            info = np.iinfo(dt)
            xv = r.integers(info.min, info.max, (4, 9), dtype=dt, endpoint=True)
            xv[0, :3] = info.max  # ties at the extremes
            xv[1, :3] = info.min
        case("largest_" + tn, xv, 4, 11)
        case("smallest_" + tn, xv, 4, 11, largest=0)
    case("newest", x, 3, 24, axis=1)
    case("newest_smallest_int64", r.integers(-5, 5, (2, 10)).astype(np.int64), 5, 24,
         largest=0)


if __name__ == "__main__":
    main()
