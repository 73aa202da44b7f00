"""The Python package onnxrun: bundled models against their expected outputs
and the CLI's, bytes vs path, input conversion, sequence, optional and map
inputs, no-copy inputs and outputs, errors with the engine's message, tensor
files, and sessions in threads.

Run by ctest (python_session) with PYTHONPATH=build/python, ONR_SOURCE_DIR
and ONR_CLI (the onnx-run binary) set.
"""
import glob
import os
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

import onnxrun

SRC = os.environ.get("ONR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("ONR_CLI")
MODELS = sorted(d for d in glob.glob(os.path.join(SRC, "testdata", "tiny_*"))
                if os.path.exists(os.path.join(d, "model.onnx")))
RESNET = os.path.join(SRC, "testdata", "tiny_resnet18")
BERT_DYN = os.path.join(SRC, "testdata", "tiny_bert_dynamic")


def case_inputs(d, s, k=0):
    files = sorted(glob.glob(os.path.join(d, "test_data_set_%d" % k, "input_*.pb")))
    return [(i.name, f) for i, f in zip(s.inputs, files)]


def case_feed(d, s, k=0):
    return {n: onnxrun.load_tensor(f) for n, f in case_inputs(d, s, k)}


def expected(d, k=0):
    files = sorted(glob.glob(os.path.join(d, "test_data_set_%d" % k, "output_*.pb")))
    return [onnxrun.load_tensor(f) for f in files]


@pytest.mark.parametrize("d", MODELS, ids=os.path.basename)
def test_bundled_model_matches_expected_and_cli(d, tmp_path):
    s = onnxrun.Session(os.path.join(d, "model.onnx"), threads=1)
    ys = s.run(None, case_feed(d, s))
    assert len(ys) == len(s.outputs)
    for y, e, o in zip(ys, expected(d), s.outputs):
        assert y.dtype == e.dtype and y.shape == e.shape, o.name
        np.testing.assert_allclose(y, e, rtol=1e-3, atol=1e-4, err_msg=o.name)
    if not CLI:
        pytest.skip("ONR_CLI not set")
    cmd = [CLI, "run", os.path.join(d, "model.onnx"), "-o", str(tmp_path), "--threads", "1"]
    for n, f in case_inputs(d, s):
        cmd += ["-i", "%s=%s" % (n, f)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    for k, y in enumerate(ys):  # same engine, inputs and threads: the same bits
        c = onnxrun.load_tensor(str(tmp_path / ("output_%d.pb" % k)))
        assert np.array_equal(y, c), s.outputs[k].name


def test_bytes_and_path_agree():
    path = os.path.join(BERT_DYN, "model.onnx")
    a = onnxrun.Session(path, threads=1)
    with open(path, "rb") as f:
        data = f.read()
    for b in (onnxrun.Session(data, threads=1), onnxrun.Session(bytearray(data), threads=1),
              onnxrun.Session(memoryview(data), threads=1)):
        feed = case_feed(BERT_DYN, a, 1)
        for x, y in zip(a.run(None, feed), b.run(None, feed)):
            assert np.array_equal(x, y)
    import pathlib
    assert onnxrun.Session(pathlib.Path(path), threads=1).inputs == a.inputs


def test_value_info_symbolic_dims():
    s = onnxrun.Session(os.path.join(BERT_DYN, "model.onnx"), threads=1)
    assert [i.name for i in s.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert s.inputs[0].dtype == np.dtype(np.int64)
    assert s.inputs[0].shape == ["batch", "seq"]
    assert s.outputs[0].shape == ["batch", "seq", 32]
    assert s.outputs[1].dtype == np.float32
    name, dtype, shape = s.outputs[1]  # a named tuple
    assert name == "pooler_output" and shape == ["batch", 32]
    assert s.get_inputs() == s.inputs and s.threads == 1
    # other batch and sequence sizes run, outputs named and ordered as asked
    feed = {n: np.ones((3, 5), np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")}
    pooled, hidden = s.run(["pooler_output", "last_hidden_state"], feed)
    assert pooled.shape == (3, 32) and hidden.shape == (3, 5, 32)
    (again,) = s.run(["pooler_output"], feed)
    assert np.array_equal(again, pooled)
    a, b = s.run(["pooler_output", "pooler_output"], feed)  # twice: two arrays
    assert np.array_equal(a, b) and not np.shares_memory(a, b)


def test_input_conversion():
    s = onnxrun.Session(os.path.join(RESNET, "model.onnx"), threads=1)
    x = onnxrun.load_tensor(os.path.join(RESNET, "test_data_set_0", "input_0.pb"))
    (ref,) = s.run(None, {"input": x})
    big = np.zeros((2,) + x.shape[1:], np.float32)
    big[1] = x[0]
    fortran = np.asfortranarray(x)
    strided = np.repeat(x, 2, axis=3)[..., ::2]
    swapped = x.astype(x.dtype.newbyteorder())
    for v in (fortran, strided, swapped, big[1:], x.tolist()):
        (y,) = s.run(None, {"input": v})
        assert np.array_equal(y, ref)
    assert not strided.flags.c_contiguous


def test_inputs_read_in_place_outputs_not_copied():
    s = onnxrun.Session(os.path.join(RESNET, "model.onnx"), threads=1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)  # 48 KiB
    s.run(None, {"input": x})  # warm up
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        (y,) = s.run(None, {"input": x})
        in_place = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        s.run(None, {"input": np.asfortranarray(x)})
        copied = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert in_place < x.nbytes // 4, in_place   # no NumPy copy of the input
    assert copied >= x.nbytes, copied          # a Fortran-order one is copied once
    # the output is the engine's buffer, owned through a capsule, not a copy
    assert not y.flags.owndata and type(y.base).__name__ == "PyCapsule"
    assert y.ctypes.data % 64 == 0 and y.flags.writeable
    (y2,) = s.run(None, {"input": x})
    assert not np.shares_memory(y, y2) and np.array_equal(y, y2)
    del y
    y2 += 1  # outputs outlive later runs and belong to the caller


def test_errors_carry_the_engine_message():
    s = onnxrun.Session(os.path.join(RESNET, "model.onnx"), threads=1)
    x = np.zeros((1, 3, 64, 64), np.float32)
    with pytest.raises(onnxrun.InputError, match=r"input 'input': expected float32, got float64"):
        s.run(None, {"input": x.astype(np.float64)})
    with pytest.raises(onnxrun.InputError, match=r"input 'input': dim 2 must be 64"):
        s.run(None, {"input": np.zeros((1, 3, 32, 64), np.float32)})
    with pytest.raises(onnxrun.InputError, match=r"rank"):
        s.run(None, {"input": np.zeros((3, 64, 64), np.float32)})
    with pytest.raises(onnxrun.InputError, match=r"input 'input' is not given"):
        s.run(None, {})
    with pytest.raises(onnxrun.InputError, match=r"no input named 'nope'"):
        s.run(None, {"input": x, "nope": x})
    with pytest.raises(onnxrun.InputError, match=r"no output named 'nope'"):
        s.run(["nope"], {"input": x})
    with pytest.raises(ValueError):  # InputError is a ValueError too
        s.run(None, {"input": x[0]})
    with pytest.raises(TypeError):
        s.run(None, [x])
    with pytest.raises(TypeError):
        s.run("logits", {"input": x})  # a name, not a list of names
    with pytest.raises(ValueError):  # ragged
        s.run(None, {"input": [[1, 2], [3]]})
    with pytest.raises(TypeError):
        s.run(None, {0: x})
    try:
        s.run(None, {"input": x.astype(np.int32)})
    except onnxrun.Error as e:
        assert e.status == "bad input" and "int32" in str(e)
    b = onnxrun.Session(os.path.join(BERT_DYN, "model.onnx"), threads=1)
    ones = np.ones((2, 4), np.int64)
    with pytest.raises(onnxrun.InputError, match=r"'batch'"):  # symbolic dims must agree
        b.run(None, {"input_ids": ones, "attention_mask": np.ones((3, 4), np.int64),
                     "token_type_ids": ones})
    # the session still works after the errors
    (y,) = s.run(None, {"input": x})
    assert y.shape == (1, 10)
    with pytest.raises(onnxrun.Error, match=r"nosuch"):
        onnxrun.Session("/nonexistent/nosuch.onnx")
    with pytest.raises(onnxrun.ModelError):
        onnxrun.Session(b"\x0a\xff\xff\xff not a model")
    with pytest.raises(TypeError):
        onnxrun.Session(12)
    with pytest.raises(ValueError):
        onnxrun.Session(os.path.join(RESNET, "model.onnx"), threads=-1)


def test_tensor_files(tmp_path):
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    onnxrun.save_tensor(str(tmp_path / "a.pb"), a, "a")
    b = onnxrun.load_tensor(str(tmp_path / "a.pb"))
    assert b.dtype == a.dtype and np.array_equal(a, b)
    np.save(tmp_path / "c.npy", a.astype(np.float32))
    c = onnxrun.load_tensor(tmp_path / "c.npy")
    assert c.dtype == np.float32 and np.array_equal(c, a)
    onnxrun.save_tensor(str(tmp_path / "s.pb"), np.array(["ab", "c"], dtype=object))
    assert list(onnxrun.load_tensor(str(tmp_path / "s.pb"))) == ["ab", "c"]
    with pytest.raises(onnxrun.Error):
        onnxrun.load_tensor(str(tmp_path / "missing.pb"))


def test_two_sessions_two_threads():
    """Different sessions run at once (the GIL is released), and so does one
    session shared by threads (a plan instance per concurrent run). Results
    equal a lone run's."""
    path = os.path.join(BERT_DYN, "model.onnx")
    rng = np.random.default_rng(2)
    feeds = [{"input_ids": rng.integers(0, 100, (2, 8)).astype(np.int64),
              "attention_mask": np.ones((2, 8), np.int64),
              "token_type_ids": np.zeros((2, 8), np.int64)} for _ in range(2)]
    ref = [onnxrun.Session(path, threads=1).run(None, f) for f in feeds]
    shared = onnxrun.Session(path, threads=1)
    errors = []

    def work(k, s):
        try:
            for _ in range(20):
                for y, r in zip(s.run(None, feeds[k]), ref[k]):
                    assert np.array_equal(y, r)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    for sessions in ([onnxrun.Session(path, threads=1) for _ in range(2)], [shared, shared]):
        ts = [threading.Thread(target=work, args=(k, sessions[k])) for k in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert not errors, errors


def test_runs_do_not_leak():
    """Outputs are freed with their arrays, converted inputs after the run:
    50 runs of a model with a 4 MiB output and a copied 4 MiB input leave
    the process about as big as it was (leaking either would add 200 MiB)."""
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("under ASan freed memory waits in its quarantine, so RSS grows anyway")
    helper = pytest.importorskip("onnx.helper")
    onnx = pytest.importorskip("onnx")
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1024, 1024])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1024, 1024])
    g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "add", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    s = onnxrun.Session(m.SerializeToString(), threads=1)
    a = np.asfortranarray(np.ones((1024, 1024), np.float32))

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    for _ in range(5):
        s.run(None, {"x": a})
    before = rss()
    for _ in range(50):
        (out,) = s.run(None, {"x": a})
        assert out[3, 5] == 2.0
    del out
    assert rss() - before < 64 << 20, (rss() - before) >> 20


def test_gil_released_while_running():
    """While one thread runs a model (~0.1 s of MatMuls), another thread
    keeps executing Python: its loop records times inside the run."""
    helper = pytest.importorskip("onnx.helper")
    onnx = pytest.importorskip("onnx")
    n = 768
    w = helper.make_tensor("w", onnx.TensorProto.FLOAT, [n, n],
                           np.random.default_rng(3).standard_normal(n * n).astype(np.float32) / n)
    nodes = [helper.make_node("MatMul", ["x" if k == 0 else "h%d" % k, "w"],
                              ["y" if k == 5 else "h%d" % (k + 1)]) for k in range(6)]
    g = helper.make_graph(nodes, "chain",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [n, n])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [n, n])], [w])
    s = onnxrun.Session(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
                        .SerializeToString(), threads=1, fuse=False)
    x = np.ones((n, n), np.float32)
    span = []

    def work():
        for _ in range(3):
            t0 = time.perf_counter()
            s.run(None, {"x": x})
            span.append((t0, time.perf_counter()))

    t = threading.Thread(target=work)
    ticks = []
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    inside = [sum(a + 0.1 * (b - a) < v < b - 0.1 * (b - a) for v in ticks) for a, b in span]
    assert max(inside) > 10, (inside, [b - a for a, b in span])


def test_zipmap_output_is_a_list_of_dicts():
    """A seq(map(string, float)) output (ZipMap, as sklearn-onnx classifiers
    end) comes back as a list of dicts, as onnxruntime gives it."""
    s = onnxrun.Session(os.path.join(SRC, "testdata", "spec", "zipmap_strings", "model.onnx"))
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    (z,) = s.run(None, {"x": x})
    assert isinstance(z, list) and len(z) == 3
    assert z[1] == {"cat": 4.0, "dog": 5.0, "eel": 6.0, "fox": 7.0}
    s = onnxrun.Session(os.path.join(SRC, "testdata", "spec", "zipmap_int64", "model.onnx"))
    (z,) = s.run(None, {"x": np.ones((2, 3), dtype=np.float32)})
    assert z == [{10: 1.0, -20: 1.0, 5: 1.0}] * 2


def _onnx():
    """The onnx package's helper and TensorProto, or skip."""
    helper = pytest.importorskip("onnx.helper")
    return helper, pytest.importorskip("onnx").TensorProto


def _session(nodes, inputs, outputs, ml=False):
    """A Session of a one-graph model at opset 18 (optional(seq) inputs need
    it), with ai.onnx.ml 3 when ml."""
    helper, _ = _onnx()
    ops = [helper.make_opsetid("", 18)] + ([helper.make_opsetid("ai.onnx.ml", 3)] if ml else [])
    m = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs), opset_imports=ops)
    return onnxrun.Session(m.SerializeToString(), threads=1)


def _map_type(key, value):
    """TypeProto map(key, tensor(value)) (onnx 1.12's helper has no maker)."""
    helper, _ = _onnx()
    t = pytest.importorskip("onnx").TypeProto()
    t.map_type.key_type = key
    t.map_type.value_type.CopyFrom(helper.make_tensor_type_proto(value, None))
    return t


def _seq_model():
    """s: seq(float) -> its length, its elements concatenated on axis 0, and
    element i."""
    helper, TP = _onnx()
    return _session([helper.make_node("SequenceLength", ["s"], ["n"]),
                     helper.make_node("ConcatFromSequence", ["s"], ["c"], axis=0),
                     helper.make_node("SequenceAt", ["s", "i"], ["a"])],
                    [helper.make_tensor_sequence_value_info("s", TP.FLOAT, None),
                     helper.make_tensor_value_info("i", TP.INT64, [])],
                    [helper.make_tensor_value_info("n", TP.INT64, []),
                     helper.make_tensor_value_info("c", TP.FLOAT, None),
                     helper.make_tensor_value_info("a", TP.FLOAT, None)])


def test_sequence_inputs():
    """A seq(tensor) input takes a list or tuple of arrays (or of anything
    numpy.asarray takes, converted to the element type); [] is an empty
    sequence."""
    helper, TP = _onnx()
    s = _seq_model()
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((2, 3)).astype(np.float32), [[1, 2, 3]],
          np.asfortranarray(rng.standard_normal((3, 3)).astype(np.float32))]
    for v in (xs, tuple(xs)):
        n, c, a = s.run(None, {"s": v, "i": np.int64(2)})
        assert n == 3 and n.dtype == np.int64
        assert c.dtype == np.float32 and np.array_equal(c, np.concatenate([np.asarray(x, np.float32)
                                                                           for x in xs]))
        assert np.array_equal(a, xs[2])
    length = _session([helper.make_node("SequenceLength", ["s"], ["n"])],
                      [helper.make_tensor_sequence_value_info("s", TP.FLOAT, None)],
                      [helper.make_tensor_value_info("n", TP.INT64, [])])
    assert length.run(None, {"s": []}) == [0] and length.run(None, {"s": ()}) == [0]
    t = _session([helper.make_node("SequenceAt", ["s", "i"], ["a"])],
                 [helper.make_tensor_sequence_value_info("s", TP.STRING, None),
                  helper.make_tensor_value_info("i", TP.INT64, [])],
                 [helper.make_tensor_value_info("a", TP.STRING, None)])
    (a,) = t.run(None, {"s": [["x", "y"], np.array(["zz", "w"], dtype=object)], "i": np.int64(1)})
    assert list(a) == ["zz", "w"]


def _optional_has_element():
    """Inputs o: optional(float tensor), q: optional(seq(int64)), and a
    session giving OptionalHasElement of each."""
    helper, TP = _onnx()
    ot = helper.make_value_info("o", helper.make_optional_type_proto(
        helper.make_tensor_type_proto(TP.FLOAT, None)))
    oq = helper.make_value_info("q", helper.make_optional_type_proto(
        helper.make_sequence_type_proto(helper.make_tensor_type_proto(TP.INT64, None))))
    has = _session([helper.make_node("OptionalHasElement", ["o"], ["ho"]),
                    helper.make_node("OptionalHasElement", ["q"], ["hq"])], [ot, oq],
                   [helper.make_tensor_value_info("ho", TP.BOOL, []),
                    helper.make_tensor_value_info("hq", TP.BOOL, [])])
    return ot, oq, has


def test_optional_inputs():
    """optional(tensor) and optional(seq) inputs: None is absent, anything
    else is the value (a list for the sequence)."""
    helper, TP = _onnx()
    ot, oq, has = _optional_has_element()
    assert [bool(h) for h in has.run(None, {"o": None, "q": None})] == [False, False]
    assert [bool(h) for h in has.run(None, {"o": [1.0], "q": []})] == [True, True]
    get = _session([helper.make_node("OptionalGetElement", ["o"], ["x"]),
                    helper.make_node("OptionalGetElement", ["q"], ["y"])], [ot, oq],
                   [helper.make_tensor_value_info("x", TP.FLOAT, None),
                    helper.make_value_info("y", helper.make_sequence_type_proto(
                        helper.make_tensor_type_proto(TP.INT64, None)))])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y, ys = get.run(None, {"o": x, "q": [[1, 2], np.array([3], np.int64)]})
    assert y.dtype == np.float32 and np.array_equal(y, x) and not np.shares_memory(y, x)
    assert len(ys) == 2 and np.array_equal(ys[0], [1, 2]) and ys[1].dtype == np.int64
    (y,) = get.run(["x"], {"o": [[1.5, 2.5]], "q": [[7]]})  # a list: converted to float32
    assert y.dtype == np.float32 and np.array_equal(y, [[1.5, 2.5]])


def test_map_inputs():
    """map(int64|string, float) inputs (DictVectorizer) from dicts, checked
    against the vector numpy makes; map(int32|uint8|string, double) through
    Identity: scalars become 1-D values, equal-shaped arrays rows."""
    helper, TP = _onnx()
    for kt, vocab, attr in ((TP.INT64, [5, -1, 7], "int64_vocabulary"),
                            (TP.STRING, ["a", "b", "c"], "string_vocabulary")):
        d = _session([helper.make_node("DictVectorizer", ["m"], ["v"], domain="ai.onnx.ml",
                                       **{attr: vocab})],
                     [helper.make_value_info("m", _map_type(kt, TP.FLOAT))],
                     [helper.make_tensor_value_info("v", TP.FLOAT, None)], ml=True)
        for m in ({vocab[2]: 3, vocab[0]: 1.5}, {vocab[1]: np.float64(-2.25)}, {}):
            (v,) = d.run(None, {"m": m})
            ref = np.array([[m.get(k, 0) for k in vocab]], np.float32)
            assert v.dtype == np.float32 and np.array_equal(v, ref), (m, v)
    for kt, keys in ((TP.INT32, [3, -7]), (TP.UINT8, [200, np.uint8(4)]), (TP.STRING, ["a", b"b"])):
        same = _session([helper.make_node("Identity", ["m"], ["n"])],
                        [helper.make_value_info("m", _map_type(kt, TP.DOUBLE))],
                        [helper.make_value_info("n", _map_type(kt, TP.DOUBLE))])
        out = [k.decode() if isinstance(k, bytes) else k if isinstance(k, str) else int(k) for k in keys]
        (r,) = same.run(None, {"m": {keys[0]: 1, keys[1]: np.float32(2.5)}})
        assert r == {out[0]: 1.0, out[1]: 2.5}
        (r,) = same.run(None, {"m": {keys[0]: [1, 2], keys[1]: np.array([3, 4.5])}})
        assert sorted(r) == sorted(out)
        assert np.array_equal(r[out[0]], [1.0, 2.0]) and np.array_equal(r[out[1]], [3.0, 4.5])
        assert r[out[0]].dtype == np.float64
        assert same.run(None, {"m": {}}) == [{}]


def test_sequence_of_maps_input_round_trips():
    """ZipMap's output (a list of dicts) given back as a seq(map) input
    comes out of Identity the same."""
    helper, TP = _onnx()
    zm = onnxrun.Session(os.path.join(SRC, "testdata", "spec", "zipmap_strings", "model.onnx"))
    (z,) = zm.run(None, {"x": np.arange(12, dtype=np.float32).reshape(3, 4)})
    sm = helper.make_sequence_type_proto(_map_type(TP.STRING, TP.FLOAT))
    same = _session([helper.make_node("Identity", ["z"], ["w"])],
                    [helper.make_value_info("z", sm)], [helper.make_value_info("w", sm)])
    assert same.run(None, {"z": z}) == [z]
    assert same.run(None, {"z": ({"a": 1, "b": 2.5}, {})}) == [[{"a": 1.0, "b": 2.5}, {}]]
    assert same.run(None, {"z": []}) == [[]]
    om = helper.make_value_info("o", helper.make_optional_type_proto(_map_type(TP.INT64, TP.FLOAT)))
    oz = helper.make_value_info("q", helper.make_optional_type_proto(sm))
    has = _session([helper.make_node("OptionalHasElement", ["o"], ["ho"]),
                    helper.make_node("OptionalHasElement", ["q"], ["hq"])], [om, oz],
                   [helper.make_tensor_value_info("ho", TP.BOOL, []),
                    helper.make_tensor_value_info("hq", TP.BOOL, [])])
    assert [bool(h) for h in has.run(None, {"o": {1: 2.0}, "q": z})] == [True, True]
    assert [bool(h) for h in has.run(None, {"o": None, "q": None})] == [False, False]


def test_container_input_errors():
    """A container where a tensor is declared, a tensor where a container
    is, containers nested deeper than declared, keys of the wrong type and
    elements of the wrong dtype: InputError naming the input and the kinds."""
    helper, TP = _onnx()
    s = _seq_model()
    i0 = np.int64(0)
    one = [np.ones(2, np.float32)]
    cases = [
        ({"s": np.ones((2, 3), np.float32), "i": i0},
         r"input 's': expected a sequence \(a list or tuple of arrays\), got a tensor \(numpy.ndarray\)"),
        ({"s": 1.0, "i": i0}, r"input 's': expected a sequence .*, got a tensor \(float\)"),
        ({"s": {1: 2.0}, "i": i0}, r"input 's': expected a sequence .*, got a map \(dict\)"),
        ({"s": None, "i": i0}, r"input 's': expected a sequence .*, got None"),
        ({"s": one, "i": {0: 1}}, r"input 'i': expected a tensor \(an array\), got a map \(dict\)"),
        ({"s": one, "i": [{0: 1}]}, r"input 'i': expected a tensor .*, got a list of maps"),
        ({"s": one, "i": None}, r"input 'i': expected a tensor .*, got None"),
        ({"s": [np.ones(2), {1: 2.0}], "i": i0},
         r"input 's': element 0: expected float32, got float64"),
        ({"s": one + [{1: 2.0}], "i": i0},
         r"input 's': element 1: expected a tensor \(an array\), got a map \(dict\)"),
        ({"s": one + [[{1: 2.0}]], "i": i0}, r"input 's': element 1: expected a tensor"),
        ({"s": one + [None], "i": i0}, r"input 's': element 1: expected a tensor .*, got None"),
    ]
    for feed, msg in cases:
        with pytest.raises(onnxrun.InputError, match=msg) as e:
            s.run(None, feed)
        assert e.value.status == "bad input"
    with pytest.raises(onnxrun.InputError, match=r"no input named 'nope'"):
        s.run(None, {"s": one, "i": i0, "nope": {"a": 1}})
    ot, oq, has = _optional_has_element()
    for feed, msg in [
            ({"o": {1: 2.0}, "q": None},
             r"input 'o': expected an optional tensor \(an array, or None\), got a map \(dict\)"),
            ({"o": np.ones(2), "q": None}, r"input 'o': expected float32, got float64"),
            ({"o": None, "q": np.ones(2, np.int64)},
             r"input 'q': expected an optional sequence \(a list, or None\), got a tensor"),
            ({"o": None, "q": [[1], {1: 2}]}, r"input 'q': element 1: expected a tensor .*map")]:
        with pytest.raises(onnxrun.InputError, match=msg):
            has.run(None, feed)
    for kt, good, bad, msg in ((TP.INT64, 5, "a", r"key 'a' has type str; the map's keys are int64"),
                               (TP.STRING, "a", 5, r"key 5 has type int; the map's keys are string"),
                               (TP.INT32, 5, 1.5, r"key 1.5 has type float; the map's keys are int32")):
        d = _session([helper.make_node("Identity", ["m"], ["n"])],
                     [helper.make_value_info("m", _map_type(kt, TP.FLOAT))],
                     [helper.make_value_info("n", _map_type(kt, TP.FLOAT))])
        for feed, m in [({"m": {good: 1.0, bad: 2.0}}, r"input 'm': " + msg),
                        ({"m": [1.0]}, r"input 'm': expected a map \(a dict\), got a sequence \(list\)"),
                        ({"m": np.ones(1, np.float32)}, r"input 'm': expected a map .*, got a tensor"),
                        ({"m": [{good: 1.0}]}, r"input 'm': expected a map .*, got a sequence"),
                        ({"m": {good: {good: 1.0}}},
                         r"input 'm': the value of key .*: expected a tensor \(an array\), got a map"),
                        ({"m": {good: None}}, r"input 'm': the value of key .*: expected a tensor")]:
            with pytest.raises(onnxrun.InputError, match=m):
                d.run(None, feed)
        assert d.run(None, {"m": {good: 1.0}}) == [{good: 1.0}]  # still works
    sm = helper.make_sequence_type_proto(_map_type(TP.STRING, TP.FLOAT))
    same = _session([helper.make_node("Identity", ["z"], ["w"])],
                    [helper.make_value_info("z", sm)], [helper.make_value_info("w", sm)])
    for z, msg in [({"a": 1.0}, r"expected a sequence of maps \(a list of dicts\), got a map"),
                   ([{"a": 1.0}, [1.0]], r"element 1: expected a map \(a dict\), got a sequence"),
                   ([{"a": 1.0}, np.ones(1)], r"element 1: expected a map .*, got a tensor"),
                   ([{1: 1.0}], r"element 0: key 1 has type int; the map's keys are string")]:
        with pytest.raises(onnxrun.InputError, match=r"input 'z': " + msg):
            same.run(None, {"z": z})


def test_container_inputs_do_not_leak():
    """The engine copies a container's elements; the copies, the converted
    arrays and the half-built containers of failed conversions are all
    freed: 50 runs with 4 MiB of sequence, optional and map elements, and 50
    failing at the last element, leave the process about as big as it was."""
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("under ASan freed memory waits in its quarantine, so RSS grows anyway")
    helper, TP = _onnx()
    s = _seq_model()
    o = _session([helper.make_node("OptionalHasElement", ["o"], ["h"])],
                 [helper.make_value_info("o", helper.make_optional_type_proto(
                     helper.make_tensor_type_proto(TP.FLOAT, None)))],
                 [helper.make_tensor_value_info("h", TP.BOOL, [])])
    m = _session([helper.make_node("Identity", ["m"], ["n"])],
                 [helper.make_value_info("m", _map_type(TP.INT64, TP.FLOAT))],
                 [helper.make_value_info("n", _map_type(TP.INT64, TP.FLOAT))])
    x = np.ones((1024, 1024), np.float32)
    seq = [x[:256], x[256:512].tolist(), x[512:768], np.asfortranarray(x[768:])]
    rows = {k: x[k] for k in range(1024)}

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def runs(k):
        for _ in range(k):
            (n,) = s.run(["n"], {"s": seq, "i": np.int64(0)})
            assert n == 4
            with pytest.raises(onnxrun.InputError):
                s.run(["n"], {"s": seq + [np.ones(2)], "i": np.int64(0)})
            assert o.run(None, {"o": x})[0]
            with pytest.raises(onnxrun.InputError):
                m.run(None, {"m": dict(rows, x=x[0])})

    runs(3)
    before = rss()
    runs(50)
    assert rss() - before < 64 << 20, (rss() - before) >> 20


def test_wait_policy_spin_count_measured():
    """Imported with no wait policy set, the package puts GOMP_SPINCOUNT,
    measured for this CPU (onnxrun._spin, within spin.h's bounds), in the
    environment before libgomp loads, and libgomp takes it; a count the
    user set is kept."""
    from onnxrun import _spin
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["OMP_DISPLAY_ENV"] = "verbose"
    code = "import os, onnxrun; print(os.environ['GOMP_SPINCOUNT'])"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    n = int(r.stdout)
    assert _spin.MIN <= n <= _spin.MAX
    if "GOMP_SPINCOUNT = " in r.stderr:  # libgomp (not clang's libomp) shows what it took
        assert "GOMP_SPINCOUNT = '%d'" % n in r.stderr
    env["GOMP_SPINCOUNT"] = "1234"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "1234"
