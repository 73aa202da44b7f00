"""onnxrun.dask on a LocalCluster of 2 worker processes: a model over Dask
arrays chunked along the batch axis and over a bag of input files gives
the same bits as one process running the same chunks, and each worker
opens the model once however many tasks it runs.
"""
import os

import numpy as np
import pytest

import onnxrun
import onnxrun.dask as od

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
import dask.array as da  # noqa: E402

# distributed 2022.12 with the tornado of Debian 12
pytestmark = pytest.mark.filterwarnings("ignore:make_current is deprecated:DeprecationWarning")

SRC = os.environ.get("ONR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BERT_DYN = os.path.join(SRC, "testdata", "tiny_bert_dynamic", "model.onnx")
RESNET = os.path.join(SRC, "testdata", "tiny_resnet18", "model.onnx")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def opened(client):
    return client.run(lambda: __import__("onnxrun.dask").dask.opened)


def test_array_over_cluster_equals_one_process(client):
    with open(BERT_DYN, "rb") as f:
        model = f.read()
    rng = np.random.default_rng(0)
    n, seq, chunk = 12, 16, 2
    ids = rng.integers(0, 100, (n, seq)).astype(np.int64)
    mask = (rng.random((n, seq)) < 0.9).astype(np.int64)
    types = np.zeros((n, seq), np.int64)
    feeds = {"input_ids": da.from_array(ids, chunks=(chunk, seq)),
             "attention_mask": da.from_array(mask, chunks=(3, seq)),  # rechunked to match
             "token_type_ids": types}
    outs = od.run_array(model, feeds, threads=1)
    assert [o.shape for o in outs] == [(n, seq, 32), (n, 32)]
    assert outs[0].chunks[0] == (chunk,) * (n // chunk)
    got = dask.compute(*outs)
    s = onnxrun.Session(model, threads=1)
    ref = [s.run(None, {"input_ids": ids[i:i + chunk], "attention_mask": mask[i:i + chunk],
                        "token_type_ids": types[i:i + chunk]}) for i in range(0, n, chunk)]
    for k, g in enumerate(got):
        assert g.dtype == np.float32
        assert np.array_equal(g, np.concatenate([r[k] for r in ref])), k
    # one session per worker process, reused by every task and by a second run
    counts = opened(client)
    assert sum(counts.values()) >= 1 and all(c <= 1 for c in counts.values()), counts
    (pooled,) = od.run_array(model, feeds, outputs=["pooler_output"], threads=1)
    assert np.array_equal(pooled.compute(), got[1])
    assert opened(client) == counts


def test_single_input_path_model(client):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 64, 64)).astype(np.float32)
    (y,) = od.run_array(RESNET, da.from_array(x, chunks=(1, 3, 64, 64)))
    s = onnxrun.Session(RESNET, threads=1)  # workers run 1 thread each
    ref = np.concatenate([s.run(None, {"input": x[i:i + 1]})[0] for i in range(4)])
    assert np.array_equal(y.compute(), ref)


def test_bag_of_files(client, tmp_path):
    rng = np.random.default_rng(2)
    files = []
    for k in range(4):
        f = tmp_path / ("img%d.npy" % k)
        np.save(f, rng.standard_normal((1, 3, 64, 64)).astype(np.float32))
        files.append(str(f))
    with open(RESNET, "rb") as f:
        model = f.read()
    dirs = od.run_files(model, files, tmp_path / "out", threads=1).compute()
    assert sorted(dirs) == [str(tmp_path / "out" / ("img%d" % k)) for k in range(4)]
    s = onnxrun.Session(RESNET, threads=1)
    for k, f in enumerate(files):
        (ref,) = s.run(None, {"input": np.load(f)})
        got = onnxrun.load_tensor(str(tmp_path / "out" / ("img%d" % k) / "output_0.pb"))
        assert np.array_equal(got, ref)
    with pytest.raises(ValueError, match="share a name"):
        od.run_files(model, [files[0], files[0]], tmp_path / "out")
