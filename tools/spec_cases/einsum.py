"""Spec-derived cases for Einsum (opset 12, its only version) beyond the
five of the ONNX 1.12 suite: explicit and implicit outputs, ellipsis with
broadcasting, diagonals and traces, reductions, transposes, batch matmul in
each operand layout, three operands, upper-case labels, spaces, an empty
contraction, and every element type of the schema. Expected outputs are
numpy.einsum's (the specification's reference), computed in float64 or with
numpy's own integer wrap-around for integer types.
    /usr/bin/python3 tools/spec_cases/einsum.py
"""
import numpy as np
from onnx import helper

from common import rng, write_case

CASES = [  # name, equation, shapes
    ("matmul", "ij,jk->ik", [(3, 4), (4, 5)]),
    ("matmul_implicit", "ij,jk", [(3, 4), (4, 5)]),
    ("batch_matmul_trans_a", "bji,bjk->bik", [(2, 4, 3), (2, 4, 5)]),
    ("batch_matmul_trans_b", "bij,bkj->bik", [(2, 3, 4), (2, 5, 4)]),
    ("permuted_contraction", "ijk,jil->kl", [(3, 4, 5), (4, 3, 2)]),
    ("out_permuted", "bij,bjk->kbi", [(2, 3, 4), (2, 4, 5)]),
    ("multi_k", "abcd,cdbe->ae", [(2, 3, 4, 5), (4, 5, 3, 6)]),
    ("ellipsis_broadcast", "...ij,...jk->...ik", [(2, 1, 3, 4), (3, 4, 2)]),
    ("ellipsis_mid", "a...b,b...->a...", [(2, 3, 4), (4, 3)]),
    ("size1_broadcast_letter", "ab,ab->ab", [(1, 3), (2, 3)]),
    ("inner", "i,i", [(7,), (7,)]),
    ("outer", "i,j->ij", [(3,), (4,)]),
    ("hadamard", "ij,ij->ij", [(3, 4), (3, 4)]),
    ("diag", "ii->i", [(4, 4)]),
    ("trace", "ii", [(4, 4)]),
    ("batch_trace", "...ii->...", [(2, 3, 3)]),
    ("sum_all", "ij->", [(3, 4)]),
    ("sum_axis", "ijk->ik", [(2, 3, 4)]),
    ("transpose_implicit", "ba", [(3, 4)]),
    ("three_operands", "abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)]),
    ("upper_case", "Ab,bC->AC", [(2, 3), (3, 4)]),
    ("upper_lower_implicit", "bA,Ac", [(2, 3), (3, 4)]),
    ("spaces", " ij , jk -> ik ", [(2, 3), (3, 2)]),
    ("diag_times_vec", "ii,i->i", [(3, 3), (3,)]),
    ("summed_in_one", "ij,jk->i", [(3, 4), (4, 5)]),
    ("empty_k", "ij,jk->ik", [(3, 0), (0, 4)]),
    ("scalar_operand", ",ij->ij", [(), (2, 3)]),
]

TYPES = [np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64,
         np.uint8, np.uint16, np.uint32, np.uint64]


def data(r, shape, dt):
    if np.issubdtype(dt, np.floating):
        return r.standard_normal(shape).astype(dt)
    if np.issubdtype(dt, np.unsignedinteger):
        return r.integers(0, 40, shape).astype(dt)  # products wrap for narrow types
    return r.integers(-40, 40, shape).astype(dt)


def expected(eq, xs, dt):
    if np.issubdtype(dt, np.floating):
        return np.einsum(eq, *[x.astype(np.float64) for x in xs]).astype(dt)
    return np.einsum(eq, *xs).astype(dt)


def case(name, eq, xs, dt):
    names = ["x%d" % i for i in range(len(xs))]
    node = helper.make_node("Einsum", names, ["y"], equation=eq)
    y = np.asarray(expected(eq, xs, dt))
    write_case("einsum_" + name, node, list(zip(names, xs)), [("y", y)], 12)


def main():
    r = rng(1212)
    for name, eq, shapes in CASES:
        xs = [data(r, s, np.float32) for s in shapes]
        case(name, eq, xs, np.float32)
    # every type on a contraction, a diagonal and a broadcast sum
    for dt in TYPES[1:]:
        tn = np.dtype(dt).name
        for name, eq, shapes in [("batch_matmul", "bij,bjk->bik", [(2, 3, 4), (2, 4, 3)]),
                                 ("batch_diag_sum", "...ii,...i->...", [(2, 3, 3), (3,)])]:
            xs = [data(r, s, dt) for s in shapes]
            case("%s_%s" % (name, tn), eq, xs, dt)


if __name__ == "__main__":
    main()
