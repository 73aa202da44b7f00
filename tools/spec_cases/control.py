"""If / Loop / Scan cases at the opsets newer than the ONNX 1.12 suite
(If, Loop 16/19/21; Scan 16/19/21), with element types the 1.12 cases do
not use (double, float16, int32, int64). Expected outputs come from numpy
loops that follow the specification's pseudo-code:
    Loop: for i while (M absent or i < M) and (cond absent or cond):
              cond, carried..., scan... = body(i, cond, carried...)
          outputs: final carried values, scan values stacked on a new axis 0
    Scan: body(state..., slice_t(x)...) over t along scan_input_axes,
          reversed where scan_input_directions is 1; scan outputs stacked
          along scan_output_axes, in reverse where scan_output_directions is 1
    If:   the chosen branch's outputs (branches may differ in shape)
Subgraphs read outer-scope values (Loop/Scan bodies, If branches).
    /usr/bin/python3 tools/spec_cases/control.py
"""
import numpy as np
import onnx
from onnx import helper, numpy_helper

from common import rng, write_case

T = onnx.TensorProto


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def np_type(dtype):
    return {T.FLOAT: np.float32, T.DOUBLE: np.float64, T.FLOAT16: np.float16,
            T.INT32: np.int32, T.INT64: np.int64}[dtype]


def loop_case(name, opset, dtype, m, cond, n_expected):
    """y = y + x * (i + 1) each iteration (x from the outer graph), scan
    output y * 2; cond_out = sum(y) < limit when cond is given."""
    npt = np_type(dtype)
    r = rng(opset * 7 + dtype)
    x = (r.integers(1, 4, size=(2, 3))).astype(npt)
    y0 = (r.integers(-3, 3, size=(2, 3))).astype(npt)
    limit = np.array(40, dtype=npt)
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["i_t"], to=dtype),
         helper.make_node("Add", ["i_t", "one"], ["i1"]),
         helper.make_node("Mul", ["x", "i1"], ["xi"]),
         helper.make_node("Add", ["y_in", "xi"], ["y_out"]),
         helper.make_node("Mul", ["y_out", "two"], ["scan"]),
         helper.make_node("ReduceSum", ["y_out"], ["s"], keepdims=0),
         helper.make_node("Less", ["s", "limit"], ["c_out"])],
        "body",
        [vi("i", T.INT64, []), vi("c_in", T.BOOL, []), vi("y_in", dtype, None)],
        # the scan output's declared shape is what a run of no iteration can give
        [vi("c_out", T.BOOL, []), vi("y_out", dtype, None), vi("scan", dtype, [2, 3])],
        initializer=[numpy_helper.from_array(np.array(1, dtype=npt), "one"),
                     numpy_helper.from_array(np.array(2, dtype=npt), "two")])
    ins = [("x", x), ("limit", limit), ("y0", y0)]
    node_in = ["", "", "y0"]
    if m is not None:
        ins.append(("M", np.array(m, dtype=np.int64)))
        node_in[0] = "M"
    if cond is not None:
        ins.append(("cond", np.array(cond, dtype=np.bool_)))
        node_in[1] = "cond"
    node = helper.make_node("Loop", node_in, ["y", "ys"], body=body)
    # reference
    y, ys, i, c = y0.copy(), [], 0, cond
    while (m is None or i < m) and (cond is None or c):
        y = (y + x * npt(i + 1)).astype(npt)
        ys.append((y * npt(2)).astype(npt))
        c = bool(y.sum(dtype=npt) < limit)
        i += 1
    assert (i == 0) == (n_expected == 0), (name, i)
    ys = np.stack(ys) if ys else np.zeros((0, 2, 3), dtype=npt)
    write_case(name, node, ins, [("y", y), ("ys", ys)], opset)


def scan_case(name, opset, dtype, in_axis, in_dir, out_axis, out_dir):
    """state += slice; scan output = state * slice (elementwise)."""
    npt = np_type(dtype)
    r = rng(opset * 11 + in_axis * 3 + in_dir)
    shape = [2, 3, 4]
    x = r.integers(-4, 5, size=shape).astype(npt)
    slice_shape = [d for k, d in enumerate(shape) if k != in_axis % len(shape)]
    s0 = r.integers(-2, 3, size=slice_shape).astype(npt)
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "xt"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "xt"], ["m"]),
         helper.make_node("Add", ["m", "bias"], ["y_t"])],
        "body",
        [vi("s_in", dtype, None), vi("xt", dtype, None)],
        [vi("s_out", dtype, None), vi("y_t", dtype, None)])
    node = helper.make_node("Scan", ["s0", "x"], ["s", "y"], num_scan_inputs=1, body=body,
                            scan_input_axes=[in_axis], scan_input_directions=[in_dir],
                            scan_output_axes=[out_axis], scan_output_directions=[out_dir])
    bias = np.array(1, dtype=npt)
    n = shape[in_axis]
    s, rows = s0.copy(), []
    for t in range(n):
        xt = np.take(x, n - 1 - t if in_dir else t, axis=in_axis)
        s = (s + xt).astype(npt)
        rows.append((s * xt + bias).astype(npt))
    if out_dir:
        rows = rows[::-1]
    y = np.stack(rows, axis=out_axis)
    write_case(name, node, [("s0", s0), ("x", x), ("bias", bias)], [("s", s), ("y", y)], opset)


def if_case(name, opset, dtype, cond):
    """then: x + k (k outer); else: concat(x, x) along 0 (another shape)."""
    npt = np_type(dtype)
    x = np.arange(6).reshape(2, 3).astype(npt)
    k = np.array(5, dtype=npt)
    then_g = helper.make_graph([helper.make_node("Add", ["x", "k"], ["t"])], "then", [],
                               [vi("t", dtype, None)])
    else_g = helper.make_graph([helper.make_node("Concat", ["x", "x"], ["e"], axis=0)], "else",
                               [], [vi("e", dtype, None)])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)
    y = (x + k).astype(npt) if cond else np.concatenate([x, x], axis=0)
    write_case(name, node, [("c", np.array(cond, dtype=np.bool_)), ("x", x), ("k", k)],
               [("y", y)], opset)


def nested_case(name, opset):
    """Loop (M = 3) whose body runs If(i is even): then a Loop of 2
    iterations adding x (read three levels down), else acc * 2."""
    x = np.array([1.5, -2.0], dtype=np.float32)
    acc0 = np.array([1.0, 1.0], dtype=np.float32)
    inner = helper.make_graph(
        [helper.make_node("Add", ["a_in", "x"], ["a_out"]),
         helper.make_node("Identity", ["c2"], ["c2_out"])],
        "inner", [vi("j", T.INT64, []), vi("c2", T.BOOL, []), vi("a_in", T.FLOAT, None)],
        [vi("c2_out", T.BOOL, []), vi("a_out", T.FLOAT, None)])
    then_g = helper.make_graph(
        [helper.make_node("Loop", ["two", "", "acc"], ["t"], body=inner)], "then", [],
        [vi("t", T.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Mul", ["acc", "twof"], ["e"])], "else", [],
                               [vi("e", T.FLOAT, None)])
    outer = helper.make_graph(
        [helper.make_node("Mod", ["i", "two"], ["r"]),
         helper.make_node("Equal", ["r", "zero"], ["even"]),
         helper.make_node("If", ["even"], ["acc_out"], then_branch=then_g, else_branch=else_g),
         helper.make_node("Identity", ["c"], ["c_out"])],
        "outer", [vi("i", T.INT64, []), vi("c", T.BOOL, []), vi("acc", T.FLOAT, None)],
        [vi("c_out", T.BOOL, []), vi("acc_out", T.FLOAT, None)])
    node = helper.make_node("Loop", ["M", "", "acc0"], ["acc"], body=outer)
    acc = acc0.copy()
    for i in range(3):
        acc = acc + 2 * x if i % 2 == 0 else acc * 2
    write_case(name, node, [("acc0", acc0), ("x", x)], [("acc", acc.astype(np.float32))], opset,
               initializers={"M": np.array(3, dtype=np.int64), "two": np.array(2, dtype=np.int64),
                             "zero": np.array(0, dtype=np.int64),
                             "twof": np.array(2, dtype=np.float32)})


def sequence_chain_case(name, opset, dtype, split, axis, keepdims, new_axis):
    """SplitToSequence -> SequenceInsert (at 1) -> SequenceErase (last) ->
    SequenceAt(0) and ConcatFromSequence: tensor in, tensors out."""
    npt = np_type(dtype)
    x = (np.arange(24).reshape(2, 3, 4) - 7).astype(npt)
    ins = [("x", x)]
    split_in = []
    if split is not None:
        ins.append(("split", np.array(split, dtype=np.int64)))
        split_in = ["split"]
    extra = {} if keepdims is None else {"keepdims": keepdims}
    # numpy reference of the split
    ax = axis % x.ndim
    n = x.shape[ax]
    if split is None:
        parts = [np.take(x, [k], axis=ax) for k in range(n)]
        if keepdims == 0:
            parts = [np.squeeze(p, axis=ax) for p in parts]
    elif np.ndim(split) == 0:
        parts = [np.take(x, range(k, min(k + split, n)), axis=ax) for k in range(0, n, split)]
    else:
        cuts = np.cumsum(split)[:-1]
        parts = np.split(x, cuts, axis=ax)
    first = parts[0]
    nodes = [helper.make_node("SplitToSequence", ["x"] + split_in, ["s"], axis=axis, **extra),
             helper.make_node("SequenceInsert", ["s", "ins", "one"], ["s2"]),
             helper.make_node("SequenceErase", ["s2"], ["s3"]),
             helper.make_node("SequenceAt", ["s3", "zero"], ["at0"]),
             helper.make_node("SequenceLength", ["s3"], ["len"]),
             helper.make_node("ConcatFromSequence", ["s3"], ["cat"], axis=axis,
                              new_axis=new_axis)]
    seq = [parts[0], first] + parts[1:]
    seq = seq[:-1]
    cat = np.stack(seq, axis=axis) if new_axis else np.concatenate(seq, axis=axis)
    write_case(name, nodes, ins, [("at0", seq[0]), ("len", np.array(len(seq), dtype=np.int64)),
                                  ("cat", cat)], opset,
               initializers={"ins": first, "one": np.array(1, dtype=np.int64),
                             "zero": np.array(0, dtype=np.int64)})


def optional_case(name, opset):
    """Optional(x) -> OptionalHasElement / OptionalGetElement; opset 18 also
    takes the tensor itself."""
    x = np.array([[1.5, -2.0, 3.0]], dtype=np.float32)
    nodes = [helper.make_node("Optional", ["x"], ["o"]),
             helper.make_node("OptionalHasElement", ["o"], ["has"]),
             helper.make_node("OptionalGetElement", ["o"], ["got"]),
             helper.make_node("OptionalHasElement", ["x"], ["has_t"]),
             helper.make_node("OptionalGetElement", ["x"], ["got_t"])]
    write_case(name, nodes, [("x", x)],
               [("has", np.array(True)), ("got", x), ("has_t", np.array(True)), ("got_t", x)],
               opset)


def main():
    for opset in (16, 19, 21):
        loop_case("loop%d_m_and_cond_float" % opset, opset, T.FLOAT, 6, True, 3)
        loop_case("loop%d_m_only_double" % opset, opset, T.DOUBLE, 4, None, 4)
        loop_case("loop%d_cond_only_int32" % opset, opset, T.INT32, None, True, 3)
        loop_case("loop%d_cond_false_at_entry_int64" % opset, opset, T.INT64, 5, False, 0)
        loop_case("loop%d_m_zero_float16" % opset, opset, T.FLOAT16, 0, True, 0)
        scan_case("scan%d_axis0_forward" % opset, opset, T.FLOAT, 0, 0, 0, 0)
        scan_case("scan%d_axis1_reverse_out_axis2" % opset, opset, T.DOUBLE, 1, 1, 2, 0)
        scan_case("scan%d_axis_neg1_out_reverse" % opset, opset, T.INT32, -1, 0, -1, 1)
        if_case("if%d_then_float16" % opset, opset, T.FLOAT16, True)
        if_case("if%d_else_int64" % opset, opset, T.INT64, False)
        nested_case("loop%d_if_loop_nested" % opset, opset)
    for opset in (18, 21):
        sequence_chain_case("sequence%d_split_default_float" % opset, opset, T.FLOAT, None, 1,
                            None, 0)
        sequence_chain_case("sequence%d_split_squeeze_stack_int32" % opset, opset, T.INT32,
                            None, -1, 0, 1)
        sequence_chain_case("sequence%d_split_scalar_double" % opset, opset, T.DOUBLE, 2, 2,
                            None, 0)
        sequence_chain_case("sequence%d_split_list_int64" % opset, opset, T.INT64, [1, 2], 1,
                            None, 0)
        optional_case("optional%d_tensor" % opset, opset)


if __name__ == "__main__":
    main()
