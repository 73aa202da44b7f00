"""Spec-derived cases for Unique (opset 11, its only version) beyond the
five of the ONNX 1.12 suite: every element type of the schema that
onnx-run has (integers, floats, bool, string), sorted and unsorted, with
and without axis (first, middle, last, negative), and all four outputs.
Expected outputs are numpy.unique's (the specification's reference),
reordered by first occurrence for sorted = 0 as the specification says.
    /usr/bin/python3 tools/spec_cases/unique.py
"""
import numpy as np
from onnx import helper

from common import rng, write_case


def ref(x, axis, sorted_):
    y, idx, inv, cnt = np.unique(x, return_index=True, return_inverse=True,
                                 return_counts=True, axis=axis)
    inv = inv.reshape(-1)
    if not sorted_:
        order = np.argsort(idx, kind="stable")   # sorted position -> output position
        pos = np.empty_like(order)
        pos[order] = np.arange(len(order))
        y = np.take(y, order, axis=0 if axis is None else axis)
        idx, cnt, inv = idx[order], cnt[order], pos[inv]
    return y, idx.astype(np.int64), inv.astype(np.int64), cnt.astype(np.int64)


def case(name, x, axis=None, sorted_=1):
    attrs = {"sorted": sorted_}
    if axis is not None:
        attrs["axis"] = axis
    node = helper.make_node("Unique", ["x"], ["y", "indices", "inverse", "counts"], **attrs)
    y, idx, inv, cnt = ref(x, axis, sorted_)
    write_case("unique_" + name, node, [("x", x)],
               [("y", y), ("indices", idx), ("inverse", inv), ("counts", cnt)], 11)


def main():
    r = rng(11)
    for dt in (np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64,
               np.uint8, np.uint16, np.uint32, np.uint64):
        x = r.integers(0, 6, (4, 5)).astype(dt)
        if dt in (np.int8, np.int16, np.int32, np.int64):
            x = x - 3
        tn = np.dtype(dt).name
        case("flat_sorted_" + tn, x)
        case("flat_unsorted_" + tn, x, sorted_=0)
    x = r.integers(0, 2, (3, 6, 2)).astype(np.int32)
    x[:, 4] = x[:, 1]
    for ax in (0, 1, 2, -2):
        case("axis%d_sorted" % ax if ax >= 0 else "axis_neg2_sorted", x, ax)
        case("axis%d_unsorted" % ax if ax >= 0 else "axis_neg2_unsorted", x, ax, 0)
    case("bool", np.array([True, False, True, True]))
    case("bool_unsorted", np.array([True, False, True, True]), sorted_=0)
    s = np.array(["pear", "apple", "pear", "fig", "", "apple", "Zed"], dtype=object)
    case("string", s)
    case("string_unsorted", s, sorted_=0)
    case("float_negzero_inf", np.array([0.0, -np.inf, 2.5, -0.0, np.inf, 2.5], np.float32))


if __name__ == "__main__":
    main()
