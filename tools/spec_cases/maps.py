"""The ai.onnx.ml operators over maps (opset 1 of ai.onnx.ml): ZipMap,
CastMap, DictVectorizer. Inputs and outputs are maps (MapProto .pb) and
sequences of maps (SequenceProto of MapProto), so these cases also check
that onnx-run reads and writes those files. Expected values follow the
operator text: ZipMap pairs column j with label j; CastMap orders values by
key (DENSE) or puts value k at index k with zeros elsewhere (SPARSE);
DictVectorizer puts each value at its key's vocabulary index, zero (or "")
where the map has no entry. Shapes the text leaves open follow ONNX
Runtime: a CastMap / DictVectorizer output is one row [1, n], and ZipMap
makes one map per row of X.
    /usr/bin/python3 tools/spec_cases/maps.py
"""
import numpy as np
from onnx import helper

from common import Map, write_case, rng

ML = {"ai.onnx.ml": 1}


def ml_node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, domain="ai.onnx.ml", **attrs)


def zipmap_cases():
    x = rng(1).random((3, 4), dtype=np.float32)
    labels = ["cat", "dog", "eel", "fox"]
    write_case("zipmap_strings", ml_node("ZipMap", ["x"], ["z"], classlabels_strings=labels),
               [("x", x)], [("z", [Map(labels, row) for row in x])], 13, ML)
    x = rng(2).random((2, 3), dtype=np.float32)
    ids = [10, -20, 5]
    write_case("zipmap_int64", ml_node("ZipMap", ["x"], ["z"], classlabels_int64s=ids),
               [("x", x)], [("z", [Map(ids, row) for row in x])], 13, ML)
    x = np.array([0.25, 0.75], dtype=np.float32)  # a 1-D X is one row
    write_case("zipmap_1d", ml_node("ZipMap", ["x"], ["z"], classlabels_int64s=[0, 1]),
               [("x", x)], [("z", [Map([0, 1], x)])], 13, ML)


def castmap_case(name, m, expect, **attrs):
    write_case(name, ml_node("CastMap", ["x"], ["y"], **attrs), [("x", m)], [("y", expect)], 13, ML)


def castmap_cases():
    keys = [3, 1, 7, 2]
    vals = np.array([0.5, -1.25, 3.0, 2.75], dtype=np.float32)
    order = np.argsort(keys)
    castmap_case("castmap_dense_float", Map(keys, vals), vals[order].reshape(1, -1))
    castmap_case("castmap_dense_float_to_int64", Map(keys, vals),
                 np.trunc(vals[order]).astype(np.int64).reshape(1, -1), cast_to="TO_INT64")
    sparse = np.zeros((1, 9), dtype=np.float32)
    sparse[0, keys] = vals
    castmap_case("castmap_sparse_float", Map(keys, vals), sparse, map_form="SPARSE", max_map=9)
    svals = np.array(["1.5", "-2", "1e3", "0.125"], dtype=object)
    castmap_case("castmap_string_to_float", Map(keys, svals),
                 svals[order].astype(np.float32).reshape(1, -1), cast_to="TO_FLOAT")
    ivals = np.array(["12", "-7", "40000000000", "0"], dtype=object)
    castmap_case("castmap_string_to_int64", Map(keys, ivals),
                 np.array([int(v) for v in ivals[order]], dtype=np.int64).reshape(1, -1),
                 cast_to="TO_INT64")
    castmap_case("castmap_string_to_string", Map(keys, svals),
                 svals[order].reshape(1, -1), cast_to="TO_STRING")
    sparse = np.zeros((1, 8), dtype=np.int64)
    sparse[0, keys] = [12, -7, 40000000000, 0]
    castmap_case("castmap_sparse_string_to_int64", Map(keys, ivals), sparse,
                 cast_to="TO_INT64", map_form="SPARSE", max_map=8)


def dictvec_case(name, m, expect, **attrs):
    write_case(name, ml_node("DictVectorizer", ["x"], ["y"], **attrs), [("x", m)],
               [("y", expect)], 13, ML)


def dictvec_cases():
    # the operator text's example: ["a", "c", "b", "z"] and {"a": 4, "c": 8} -> [4, 8, 0, 0]
    dictvec_case("dictvectorizer_string_float", Map(["a", "c"], np.array([4, 8], dtype=np.float32)),
                 np.array([[4, 8, 0, 0]], dtype=np.float32), string_vocabulary=["a", "c", "b", "z"])
    vocab = [7, 3, 11, 5, 2]
    m = Map([11, 2, 99], np.array([1.5, -2.5, 8.0]))  # 99 is not in the vocabulary: dropped
    expect = np.zeros((1, 5))
    expect[0, vocab.index(11)], expect[0, vocab.index(2)] = 1.5, -2.5
    dictvec_case("dictvectorizer_int64_double", m, expect, int64_vocabulary=vocab)
    m = Map(["b", "a"], np.array([5, -6], dtype=np.int64))
    dictvec_case("dictvectorizer_string_int64", m, np.array([[-6, 0, 5]], dtype=np.int64),
                 string_vocabulary=["a", "x", "b"])
    m = Map([3, 5], np.array(["three", "five"], dtype=object))
    dictvec_case("dictvectorizer_int64_string", m,
                 np.array([["five", "", "three"]], dtype=object), int64_vocabulary=[5, 4, 3])


if __name__ == "__main__":
    zipmap_cases()
    castmap_cases()
    dictvec_cases()
