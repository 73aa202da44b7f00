#!/usr/bin/env python3
"""fuzz_models.py ONNX_RUN TESTDATA_DIR [--structured] [--cases N] [--seed S] [--timeout SEC]

Mutation test for the loader, planner and kernels: take the bundled models
in TESTDATA_DIR (testdata/*/model.onnx), damage their bytes in ways that
keep most of the protobuf parseable (bit flips, bytes set to boundary
values, varints widened, runs deleted or duplicated, truncation), and run
`onnx-run run` on each result with generated inputs. Every run must end with
exit status 0, 1 or 3 (never a signal, never 2) within the timeout, and must
not print a sanitizer report.

--structured mutates the parsed model instead (needs the python3-onnx
package): attributes set to boundary values, initializer contents and dims
changed (shape tensors, indices, axes), graph input dims made huge, zero or
negative, node inputs rewired or dropped, op types swapped. These files
parse, so they reach shape inference, constant folding and the kernels. Deterministic for a given seed; prints the
failing mutations so they can be replayed (--replay SEED:INDEX).
"""
import os
import random
import subprocess
import sys
import tempfile

BOUNDARY = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x3F, 0x40]


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 8])):
        kind = rng.randrange(7)
        if not b:
            break
        # Most of a model's bytes are weights; aim half the mutations at the
        # first and last 4 KiB, where the graph structure usually sits.
        if rng.random() < 0.5:
            lo, hi = (0, min(len(b), 4096)) if rng.random() < 0.5 else (max(0, len(b) - 4096), len(b))
        else:
            lo, hi = 0, len(b)
        i = rng.randrange(lo, hi)
        if kind == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            b[i] = rng.choice(BOUNDARY)
        elif kind == 2:  # widen a byte into a huge varint
            b[i:i + 1] = bytes([0xFF] * rng.randrange(2, 10) + [0x01])
        elif kind == 3:  # delete a run
            del b[i:i + rng.randrange(1, 64)]
        elif kind == 4:  # duplicate a run
            n = rng.randrange(1, 64)
            b[i:i] = b[i:i + n]
        elif kind == 5:  # truncate
            del b[i:]
        else:  # random bytes
            n = rng.randrange(1, 16)
            b[i:i + n] = bytes(rng.randrange(256) for _ in range(n))
    return bytes(b)


INT_EDGES = [0, 1, -1, 2, -2, 3, 7, 64, 2**31 - 1, -2**31, 2**40, -2**40, 2**62, 2**63 - 1, -2**63]
FLOAT_EDGES = [0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, 3.4e38, float("inf"), float("-inf"), float("nan")]


def mutate_structured(blob: bytes, rng: random.Random) -> bytes:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.ParseFromString(blob)
    g = m.graph
    names = [v.name for v in g.input] + [t.name for t in g.initializer] + \
        [o for n in g.node for o in n.output]
    op_types = sorted({n.op_type for n in g.node})
    small = [t for t in g.initializer if len(t.dims) <= 1 and
             t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)]
    for _ in range(rng.choice([1, 1, 2, 3])):
        kind = rng.randrange(8)
        node = rng.choice(g.node) if len(g.node) else None
        if kind == 0 and node is not None and node.attribute:
            a = rng.choice(node.attribute)
            if a.type == onnx.AttributeProto.INT:
                a.i = rng.choice(INT_EDGES)
            elif a.type == onnx.AttributeProto.INTS and len(a.ints):
                a.ints[rng.randrange(len(a.ints))] = rng.choice(INT_EDGES)
            elif a.type == onnx.AttributeProto.INTS:
                a.ints.extend(rng.choice(INT_EDGES) for _ in range(rng.randrange(1, 9)))
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = rng.choice(FLOAT_EDGES)
            elif a.type == onnx.AttributeProto.STRING:
                a.s = rng.choice([b"", b"SAME_UPPER", b"VALID", b"bogus", b"\xff" * 3])
        elif kind == 1 and small:  # shape/index/axes constants
            t = rng.choice(small)
            arr = numpy_helper.to_array(t).copy().reshape(-1)
            if arr.size and rng.random() < 0.7:
                dt = arr.dtype
                v = rng.choice(INT_EDGES)
                info = np.iinfo(dt)
                arr[rng.randrange(arr.size)] = max(info.min, min(info.max, v))
            else:  # change the length
                arr = np.array([rng.choice(INT_EDGES[:8]) for _ in range(rng.randrange(0, 14))],
                               dtype=arr.dtype)
            nt = numpy_helper.from_array(arr.reshape(-1) if len(t.dims) else arr.reshape(()) if arr.size == 1 else arr, t.name)
            t.CopyFrom(nt)
        elif kind == 2 and g.initializer:  # dims that disagree with the data
            t = rng.choice(g.initializer)
            if len(t.dims):
                t.dims[rng.randrange(len(t.dims))] = rng.choice(INT_EDGES)
            else:
                t.dims.append(rng.choice(INT_EDGES))
        elif kind == 3 and g.input:  # graph input dims
            vi = rng.choice(g.input)
            dims = vi.type.tensor_type.shape.dim
            if len(dims):
                d = dims[rng.randrange(len(dims))]
                if rng.random() < 0.3:
                    d.dim_param = "sym"
                else:
                    d.dim_value = rng.choice([0, -1, 2**31, 2**40, 2**62, 3, 17])
        elif kind == 4 and node is not None and node.input:  # rewire an input
            node.input[rng.randrange(len(node.input))] = rng.choice(names + [""])
        elif kind == 5 and node is not None and node.input:  # drop the last input
            del node.input[-1]
        elif kind == 6 and node is not None:  # another op type of the model
            node.op_type = rng.choice(op_types)
        elif kind == 7 and node is not None:  # extra or duplicated input
            node.input.append(rng.choice(names))
    return m.SerializeToString()


def main() -> int:
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__)
        return 2
    cli, tdir = args[0], args[1]
    cases, seed, timeout, replay, structured = 300, 1, 60.0, None, False
    i = 2
    while i < len(args):
        if args[i] == "--structured":
            structured = True; i += 1
        elif args[i] == "--cases":
            cases = int(args[i + 1]); i += 2
        elif args[i] == "--seed":
            seed = int(args[i + 1]); i += 2
        elif args[i] == "--timeout":
            timeout = float(args[i + 1]); i += 2
        elif args[i] == "--replay":
            s, k = args[i + 1].split(":"); seed, replay = int(s), int(k); i += 2
        else:
            print(f"fuzz_models: unknown argument {args[i]}")
            return 2
    models = sorted(os.path.join(tdir, d, "model.onnx") for d in os.listdir(tdir)
                    if os.path.isfile(os.path.join(tdir, d, "model.onnx")))
    if not models:
        print(f"fuzz_models: no models under {tdir}")
        return 1
    blobs = [open(m, "rb").read() for m in models]
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    # one thread a run, so no OpenMP wait policy matters: the CLI skips
    # executing itself again to set one (a sanitized start costs 0.1-0.2 s)
    env.setdefault("ONR_WAIT_POLICY_SET", "1")
    bad = 0
    seen = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        for k in range(cases):
            rng = random.Random(seed * 1000003 + k)
            mi = rng.randrange(len(models))
            if replay is not None and k != replay:
                continue
            data = mutate_structured(blobs[mi], rng) if structured else mutate(blobs[mi], rng)
            with open(path, "wb") as f:
                f.write(data)
            try:
                p = subprocess.run([cli, "run", path, "--threads", "1"], capture_output=True,
                                   timeout=timeout, env=env)
                rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
            except subprocess.TimeoutExpired:
                rc, err = "timeout", ""
            sanitizer = "runtime error:" in err or "Sanitizer" in err
            seen[rc] = seen.get(rc, 0) + 1
            if rc not in (0, 1, 3) or sanitizer or (rc in (1, 3) and not err.strip()):
                bad += 1
                print(f"BAD {seed}:{k} model {models[mi]} exit {rc}")
                print("\n".join(err.strip().splitlines()[-15:]))
            if replay is not None:
                print(f"{seed}:{k} exit {rc}\n{err}")
    print(f"fuzz_models: {cases} mutated models, exit statuses {dict(sorted(seen.items(), key=str))}, "
          f"{bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
