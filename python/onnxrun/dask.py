"""onnxrun.dask: batch inference with onnx-run on a Dask cluster.

    from dask.distributed import Client
    import dask.array as da, onnxrun.dask

    client = Client("scheduler:8786")          # or Client(LocalCluster(...))
    x = da.from_zarr(...).rechunk({0: 64})     # [N, 3, 224, 224], batch chunks of 64
    (y,) = onnxrun.dask.run_array("model.onnx", x)
    y.to_zarr(...)                             # or y.compute()

    paths = onnxrun.dask.run_files(open("model.onnx", "rb").read(),
                                   ["a.npy", "b.npy"], "out/").compute()

Each worker process opens the model once and keeps the session for every
later task (a cache keyed by the model's SHA-256 for bytes, by its path,
size and modification time for a path, and by the thread count and fusion
switch). A session runs with the worker's thread count (`dask-worker
--nthreads N`; a worker resource named "threads" overrides it, and so does
threads=), and tasks sharing it in one worker run one at a time, each with
all those threads. A model given as bytes travels to each worker once (one
graph key all tasks depend on); a path must name the same file on every
worker.

Outside a distributed worker (the threaded or synchronous scheduler) the
same functions work, with sessions of every CPU.
"""
import hashlib
import operator
import os
import threading

import numpy as np

from . import Session, load_tensor, save_tensor

_lock = threading.Lock()
_sessions = {}
# Sessions this process has opened (read by tests through Client.run).
opened = 0


def _worker_threads():
    try:
        from distributed import get_worker
        w = get_worker()
    except (ImportError, ValueError):
        return 0  # not in a worker: every CPU
    state = w.state if hasattr(w, "state") else w  # distributed >= 2022.08 keeps them in .state
    res = getattr(state, "total_resources", None) or {}
    if "threads" in res:
        return max(1, int(res["threads"]))
    return int(state.nthreads)


def _model_key(model, digest):
    if digest is not None:
        return ("sha256", digest)
    st = os.stat(model)
    return ("path", os.path.realpath(model), st.st_size, st.st_mtime_ns)


def session(model, digest=None, threads=None, fuse=True):
    """The process's Session for model (path or bytes; digest: the bytes'
    SHA-256, to skip hashing them again), opened on first use."""
    global opened
    if digest is None and not isinstance(model, (str, os.PathLike)):
        digest = hashlib.sha256(model).hexdigest()
    threads = threads or _worker_threads()
    key = (_model_key(model, digest), threads, bool(fuse))
    with _lock:
        s = _sessions.get(key)
        if s is None:
            s = Session(model, threads=threads, fuse=fuse)
            _sessions[key] = s
            opened += 1
    return s


def _prepare(model):
    """(value for the graph, its SHA-256 or None): a path stays a path."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model), None
    model = bytes(model)
    return model, hashlib.sha256(model).hexdigest()


def _run_block(model, digest, threads, fuse, names, outputs, blocks):
    s = session(model, digest, threads, fuse)
    return tuple(s.run(list(outputs), dict(zip(names, blocks))))


def run_array(model, inputs, outputs=None, threads=None, fuse=True):
    """Run model over Dask arrays chunked along axis 0 (the batch axis).

    inputs: a dask (or numpy) array for a model with one input, or a dict
    {input name: array}; every array is cut as the first along axis 0 and
    kept whole along the other axes. outputs: output names (default all).
    Returns a list of dask arrays, one per output, chunked like the inputs
    along axis 0; every output's axis 0 must be the batch axis. One task
    runs each batch chunk; all outputs of a chunk come from that one run.
    """
    import dask.array as da
    from dask.base import tokenize

    value, digest = _prepare(model)
    meta = Session(value, threads=1, fuse=fuse)  # names, types and shapes
    if not isinstance(inputs, dict):
        if len(meta.inputs) != 1:
            raise ValueError("the model has %d inputs: pass a dict {name: array}" % len(meta.inputs))
        inputs = {meta.inputs[0].name: inputs}
    names = list(inputs)
    arrays = [da.asarray(inputs[n]) for n in names]
    first = arrays[0]
    if first.ndim == 0:
        raise ValueError("input '%s' has no batch axis" % names[0])
    arrays = [a.rechunk((first.chunks[0],) + tuple(-1 for _ in range(a.ndim - 1))) for a in arrays]
    if any(a.shape[0] != first.shape[0] for a in arrays):
        raise ValueError("the inputs' batch sizes differ: %s" % [a.shape[0] for a in arrays])
    outs = [o for o in meta.outputs if outputs is None or o.name in outputs]
    if outputs is not None:
        missing = [n for n in outputs if n not in {o.name for o in outs}]
        if missing:
            raise ValueError("the model has no output named %s" % ", ".join(map(repr, missing)))
        outs = [next(o for o in meta.outputs if o.name == n) for n in outputs]
    # trailing dims: as declared, else probed by running the first chunk's shape on zeros
    tails = [o.shape[1:] if o.shape else None for o in outs]
    if any(t is None or any(not isinstance(d, int) for d in t) for t in tails):
        n0 = first.chunks[0][0]
        zeros = {n: np.zeros((n0,) + a.shape[1:], a.dtype) for n, a in zip(names, arrays)}
        tails = [r.shape[1:] for r in meta.run([o.name for o in outs], zeros)]
    del meta
    token = tokenize(digest or value, threads, fuse, names, [o.name for o in outs],
                     [a.name for a in arrays])
    run_name = "onnxrun-run-" + token
    dsk = {}
    for a in arrays:
        dsk.update(a.__dask_graph__())
    model_arg = value
    if digest is not None:  # the bytes once in the graph; tasks refer to the key
        model_arg = "onnxrun-model-" + digest
        dsk[model_arg] = value
    nblocks = len(first.chunks[0])
    for i in range(nblocks):
        blocks = [(a.name, i) + (0,) * (a.ndim - 1) for a in arrays]
        dsk[(run_name, i)] = (_run_block, model_arg, digest, threads, fuse, names,
                              [o.name for o in outs], blocks)
    result = []
    for k, (o, tail) in enumerate(zip(outs, tails)):
        name = "onnxrun-out%d-%s" % (k, token)
        g = dict(dsk)
        for i in range(nblocks):
            g[(name, i) + (0,) * len(tail)] = (operator.getitem, (run_name, i), k)
        dtype = o.dtype if isinstance(o.dtype, np.dtype) else np.dtype(np.uint16)
        chunks = (first.chunks[0],) + tuple((int(d),) for d in tail)
        result.append(da.Array(g, name, chunks, dtype=dtype))
    return result


def _run_file(item, model, digest, threads, fuse, out_dir):
    s = session(model, digest, threads, fuse)
    if isinstance(item, dict):
        feed = {n: load_tensor(p) for n, p in item.items()}
        first = next(iter(item.values()))
    else:
        paths = [item] if isinstance(item, (str, os.PathLike)) else list(item)
        if len(paths) != len(s.inputs):
            raise ValueError("%d input files for a model of %d inputs: %s"
                             % (len(paths), len(s.inputs), paths))
        feed = {i.name: load_tensor(p) for i, p in zip(s.inputs, paths)}
        first = paths[0]
    d = os.path.join(out_dir, _stem(first))
    os.makedirs(d, exist_ok=True)
    for k, (o, y) in enumerate(zip(s.outputs, s.run(None, feed))):
        save_tensor(os.path.join(d, "output_%d.pb" % k), y, o.name)
    return d


def _stem(path):
    return os.path.splitext(os.path.basename(os.fspath(path)))[0]


def run_files(model, files, out_dir, threads=None, fuse=True, npartitions=None):
    """A dask bag that runs model on each item of files and writes its
    outputs as out_dir/STEM/output_K.pb (a TensorProto named after the
    output: what `onnx-run run MODEL -i FILE -o out_dir/STEM` writes).

    An item is one file (.pb or .npy) for a model of one input, a tuple of
    files (the inputs in graph order) or a dict {input name: file}; STEM is
    the first file's name without its extension and must be unique. The
    bag holds the output directories once computed.
    """
    import dask
    import dask.bag as db

    items = list(files)
    stems = [_stem(next(iter(i.values())) if isinstance(i, dict) else
                   i if isinstance(i, (str, os.PathLike)) else i[0]) for i in items]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError("input files share a name, so their outputs would collide: %s" % dup)
    value, digest = _prepare(model)
    if digest is not None:
        value = dask.delayed(value, pure=True)  # one key, fetched once per worker
    bag = db.from_sequence(items, npartitions=npartitions or min(len(items), 64) or 1)
    return bag.map(_run_file, value, digest, threads, fuse, os.fspath(out_dir))
