"""Spec cases for the ai.onnx.ml tensor operators (the ONNX 1.12 suite has
none): tree ensembles (TreeEnsembleRegressor / TreeEnsembleClassifier 1 and
3, TreeEnsemble 5), linear models, LabelEncoder 1/2/4, the small feature
transforms and the SVMs.

Expected outputs come from numpy code written here from the operators'
specification text (and, where the text is silent, the ONNX reference
implementation's documented behaviour): a tree walker over the Python tree
structures the attributes are generated from, matrix products for the linear
models and kernels for the SVMs. Nothing is computed by onnx-run.

    /usr/bin/python3 tools/spec_cases/ml.py
"""
import math
import os
import sys

import numpy as np
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import rng, write_case  # noqa: E402

ML = "ai.onnx.ml"
OPSET = 17
COUNT = [0]


def case(name, node, inputs, outputs, ml_opset):
    write_case(name, node, inputs, outputs, OPSET, domain_opsets={ML: ml_opset})
    COUNT[0] += 1


def mknode(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, domain=ML, **attrs)


def tens(a):
    return numpy_helper.from_array(np.asarray(a))


# ---- post transforms, from the specification / reference text -------------------

def logistic(v):
    e = 1.0 / (1.0 + np.exp(-np.abs(v)))
    return np.where(v < 0, 1.0 - e, e)


def softmax(row):
    e = np.exp(row - row.max())
    return e / e.sum()


def softmax_zero(row):
    row = row.copy()
    m = row.max()
    nz = np.abs(row) > 1e-7
    row = np.where(nz, np.exp(row - m), row * np.exp(-m))
    s = row.sum()
    return np.full_like(row, 0.5) if s == 0 else row / s


def erfinv_approx(x):
    sgn = -1.0 if x < 0 else 1.0
    x = (1.0 - x) * (1.0 + x)
    if x == 0:
        return 0.0
    lg = math.log(x)
    v = 2.0 / (math.pi * 0.147) + 0.5 * lg
    v2 = 1.0 / 0.147 * lg
    return sgn * math.sqrt(-v + math.sqrt(v * v - v2))


def post(pt, scores):
    s = np.array(scores, dtype=np.float64)
    out = np.empty_like(s)
    for i, row in enumerate(s):
        if pt == "NONE":
            out[i] = row
        elif pt == "LOGISTIC":
            out[i] = logistic(row)
        elif pt == "SOFTMAX":
            out[i] = softmax(row)
        elif pt == "SOFTMAX_ZERO":
            out[i] = softmax_zero(row)
        elif pt == "PROBIT":
            out[i] = [1.41421356 * erfinv_approx(2 * v - 1) for v in row]
    return out


PT5 = {"NONE": 0, "SOFTMAX": 1, "LOGISTIC": 2, "SOFTMAX_ZERO": 3, "PROBIT": 4}
AGG5 = {"AVERAGE": 0, "SUM": 1, "MIN": 2, "MAX": 3}
MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ",
         "BRANCH_MEMBER"]

# ---- random trees ------------------------------------------------------------------
# A tree is ("leaf", [(target, weight), ...]) or
# ("branch", mode, feature, threshold_or_set, nan_true, true_subtree, false_subtree).
# Features 0..F/2-1 are continuous, the rest small integers (for EQ / NEQ / MEMBER).


def rand_tree(r, depth, nfeat, ntargets, modes, votes_all=False, votes_one=None):
    if depth == 0 or (depth < 3 and r.random() < 0.25):
        if votes_one is not None:
            return ("leaf", [(votes_one, float(np.float32(r.normal())))])
        if votes_all:
            return ("leaf", [(t, float(np.float32(r.normal()))) for t in range(ntargets)])
        k = int(r.integers(1, ntargets + 1))
        tg = sorted(r.choice(ntargets, size=k, replace=False).tolist())
        return ("leaf", [(t, float(np.float32(r.normal()))) for t in tg])
    mode = modes[int(r.integers(len(modes)))]
    if mode in ("BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER"):
        f = int(r.integers(nfeat // 2, nfeat))
        th = set(float(v) for v in r.choice(5, size=2, replace=False)) if mode == "BRANCH_MEMBER" \
            else float(r.integers(0, 5))
    else:
        f = int(r.integers(0, nfeat // 2))
        th = float(np.float32(r.normal() * 0.7))
    nan_true = int(r.integers(0, 2))
    return ("branch", mode, f, th, nan_true,
            rand_tree(r, depth - 1, nfeat, ntargets, modes, votes_all, votes_one),
            rand_tree(r, depth - 1, nfeat, ntargets, modes, votes_all, votes_one))


def rand_x(r, n, nfeat, nan=False):
    x = np.empty((n, nfeat))
    x[:, : nfeat // 2] = r.normal(size=(n, nfeat // 2))
    x[:, nfeat // 2:] = r.integers(0, 5, size=(n, nfeat - nfeat // 2))
    if nan:
        m = r.random(size=x.shape) < 0.15
        x[m] = np.nan
    return x


def walk(tree, row, v5):
    """The leaf a row reaches. v1/v3: NaN follows nan_true only; v5: NaN
    takes the true branch when nan_true, else the comparison decides."""
    while tree[0] == "branch":
        _, mode, f, th, nan_true, t, fl = tree
        x = row[f]
        if np.isnan(x) and (nan_true or not v5):
            go = bool(nan_true)
        elif mode == "BRANCH_LEQ":
            go = x <= th
        elif mode == "BRANCH_LT":
            go = x < th
        elif mode == "BRANCH_GTE":
            go = x >= th
        elif mode == "BRANCH_GT":
            go = x > th
        elif mode == "BRANCH_EQ":
            go = x == th
        elif mode == "BRANCH_NEQ":
            go = x != th
        else:
            go = x in th
        tree = t if go else fl
    return tree[1]


def aggregate(trees, X, ntargets, agg, v5):
    out = np.zeros((X.shape[0], ntargets))
    for i, row in enumerate(X):
        acc = [None] * ntargets
        for tr in trees:
            for tg, w in walk(tr, row, v5):
                if acc[tg] is None:
                    acc[tg] = w
                elif agg in ("SUM", "AVERAGE"):
                    acc[tg] += w
                elif agg == "MIN":
                    acc[tg] = min(acc[tg], w)
                else:
                    acc[tg] = max(acc[tg], w)
        for k in range(ntargets):
            out[i, k] = 0.0 if acc[k] is None else acc[k]
        if agg == "AVERAGE":
            out[i] /= len(trees)
    return out


def v13_attrs(trees, r, prefix, tree_ids=None, shuffle=True):
    """nodes_* and <prefix>* attribute lists of the v1/v3 encoding. Node ids
    are preorder numbers (offset per tree when shuffle, to show ids need not
    start at 0 in v1); each tree's root comes first among its nodes."""
    A = {k: [] for k in ("treeids", "nodeids", "featureids", "modes", "values", "true", "false",
                         "mvt")}
    V = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    tree_ids = tree_ids or list(range(len(trees)))
    for tid, tr in zip(tree_ids, trees):
        rows = []
        counter = [0]

        def number(t):
            nid = counter[0]
            counter[0] += 1
            if t[0] == "leaf":
                rows.append((nid, "LEAF", 0, 0.0, 0, 0, 0))
                for tg, w in t[1]:
                    V["treeids"].append(tid)
                    V["nodeids"].append(nid)
                    V["ids"].append(tg)
                    V["weights"].append(w)
                return nid
            idx = len(rows)
            rows.append(None)
            a = number(t[5])
            b = number(t[6])
            rows[idx] = (nid, t[1], t[2], t[3], t[4], a, b)
            return nid

        number(tr)
        order = [0] + (list(r.permutation(range(1, len(rows)))) if shuffle else
                       list(range(1, len(rows))))
        for j in order:
            nid, mode, f, th, mv, a, b = rows[j]
            A["treeids"].append(tid)
            A["nodeids"].append(nid)
            A["featureids"].append(f)
            A["modes"].append(mode)
            A["values"].append(th)
            A["true"].append(a)
            A["false"].append(b)
            A["mvt"].append(mv)
    # votes in a shuffled order (any order is valid)
    perm = r.permutation(len(V["ids"])) if shuffle else np.arange(len(V["ids"]))
    attrs = dict(nodes_treeids=A["treeids"], nodes_nodeids=A["nodeids"],
                 nodes_featureids=A["featureids"], nodes_modes=A["modes"],
                 nodes_truenodeids=A["true"], nodes_falsenodeids=A["false"],
                 nodes_missing_value_tracks_true=A["mvt"])
    attrs[prefix + "treeids"] = [V["treeids"][k] for k in perm]
    attrs[prefix + "nodeids"] = [V["nodeids"][k] for k in perm]
    attrs[prefix + "ids"] = [V["ids"][k] for k in perm]
    weights = [V["weights"][k] for k in perm]
    return attrs, A["values"], weights


def v5_attrs(trees, dtype):
    """TreeEnsemble-5 encoding: interior nodes and leaves in separate arrays,
    one leaf entry per vote (a leaf with several votes becomes a chain is not
    possible, so trees for v5 have one vote per leaf)."""
    N = {k: [] for k in ("splits", "feat", "modes", "true", "false", "tl", "fl", "mvt")}
    L = {"t": [], "w": []}
    members = []
    roots = []

    def leaf(t):
        assert len(t[1]) == 1
        L["t"].append(t[1][0][0])
        L["w"].append(t[1][0][1])
        return len(L["t"]) - 1

    def node(t):
        idx = len(N["splits"])
        for k in N:
            N[k].append(0)
        mode = MODES.index(t[1])
        N["modes"][idx] = mode
        N["feat"][idx] = t[2]
        N["splits"][idx] = 0.0 if mode == 6 else t[3]
        N["mvt"][idx] = t[4]
        if mode == 6:
            members.append(sorted(t[3]))
        for side, sub in (("true", t[5]), ("false", t[6])):
            if sub[0] == "leaf":
                N[side][idx] = leaf(sub)
                N["tl" if side == "true" else "fl"][idx] = 1
            else:
                N[side][idx] = node(sub)
        return idx

    for tr in trees:
        if tr[0] == "leaf":  # degenerate tree: both branches reach one leaf
            idx = len(N["splits"])
            for k in N:
                N[k].append(0)
            li = leaf(tr)
            N["true"][idx] = N["false"][idx] = li
            N["tl"][idx] = N["fl"][idx] = 1
            roots.append(idx)
        else:
            roots.append(node(tr))
    attrs = dict(nodes_splits=tens(np.array(N["splits"], dtype)), nodes_featureids=N["feat"],
                 nodes_modes=tens(np.array(N["modes"], np.uint8)),
                 nodes_truenodeids=N["true"], nodes_falsenodeids=N["false"],
                 nodes_trueleafs=N["tl"], nodes_falseleafs=N["fl"],
                 nodes_missing_value_tracks_true=N["mvt"], tree_roots=roots,
                 leaf_targetids=L["t"], leaf_weights=tens(np.array(L["w"], dtype)))
    if members:
        flat = []
        for s in members:
            flat += s + [np.nan]
        attrs["membership_values"] = tens(np.array(flat, dtype))
    return attrs


# ---- tree ensemble cases --------------------------------------------------------------

def tree_regressor_cases():
    base_modes = MODES[:6]
    specs = [
        # name, ml opset, X dtype, agg, post, as_tensor, nan, votes_all
        ("ml_tree_reg_v1_sum_float", 1, np.float32, "SUM", "NONE", False, False, False),
        ("ml_tree_reg_v1_avg_int64", 2, np.int64, "AVERAGE", "NONE", False, False, False),
        ("ml_tree_reg_v1_min_int32", 1, np.int32, "MIN", "NONE", False, False, True),
        ("ml_tree_reg_v1_max_double", 2, np.float64, "MAX", "NONE", False, False, True),
        ("ml_tree_reg_v1_nan_logistic", 1, np.float32, "SUM", "LOGISTIC", False, True, False),
        ("ml_tree_reg_v3_sum_as_tensor", 3, np.float64, "SUM", "NONE", True, True, False),
        ("ml_tree_reg_v3_avg_softmax", 3, np.float32, "AVERAGE", "SOFTMAX", True, False, True),
        ("ml_tree_reg_v3_softmax_zero", 4, np.float32, "SUM", "SOFTMAX_ZERO", False, False, False),
    ]
    for i, (name, mlv, dt, agg, pt, as_t, nan, vall) in enumerate(specs):
        r = rng(100 + i)
        nfeat, ntargets, ntrees = 6, 3, 4
        trees = [rand_tree(r, 4, nfeat, ntargets, base_modes, votes_all=vall) for _ in range(ntrees)]
        X = rand_x(r, 12, nfeat, nan)
        if dt in (np.int64, np.int32):
            X = np.round(X * 2)
        X = X.astype(dt)
        tids = [0, 3, 4, 9]
        attrs, values, weights = v13_attrs(trees, r, "target_", tree_ids=tids, shuffle=(i % 2 == 0))
        base = [float(np.float32(v)) for v in r.normal(size=ntargets)]
        if as_t:
            values64 = np.array(values, np.float64)
            attrs["nodes_values_as_tensor"] = tens(values64)
            attrs["target_weights_as_tensor"] = tens(np.array(weights, np.float64))
            attrs["base_values_as_tensor"] = tens(np.array(base, np.float64))
        else:
            attrs["nodes_values"] = values
            attrs["target_weights"] = weights
            attrs["base_values"] = base
        attrs.update(n_targets=ntargets, aggregate_function=agg, post_transform=pt)
        # thresholds compare as stored: float32 unless given as a double tensor
        Xc = X.astype(np.float32).astype(np.float64) if dt in (np.int64, np.int32) else \
            X.astype(np.float64)
        ttrees = trees
        score = aggregate(ttrees, Xc, ntargets, agg, v5=False) + np.array(base)
        y = post(pt, score).astype(np.float32)
        case(name, mknode("TreeEnsembleRegressor", ["X"], ["Y"], **attrs), [("X", X)],
             [("Y", y)], mlv)


def classify(scores, labels, class_ids, pt):
    """Labels and scores as the TreeEnsembleClassifier reference defines them."""
    res = np.array(scores, dtype=np.float64)
    binary = len(set(class_ids)) == 1 and len(labels) <= 2
    if binary:
        cid = class_ids[0]
        s = res[:, cid].copy()
        res = np.zeros((res.shape[0], 2))
        res[:, 1] = s
        res[:, 0] = 1 - s if pt in ("NONE", "PROBIT") else -s
    z = post(pt, res)
    best = np.argmax(z, axis=1)
    if len(labels) == 1:
        y = np.array([labels[0] if b == 1 else 0 for b in best], dtype=np.int64)
    elif isinstance(labels[0], str):
        y = np.array([labels[b] for b in best], dtype=object)
    else:
        y = np.array([labels[b] for b in best], dtype=np.int64)
    return y, z.astype(np.float32)


def tree_classifier_cases():
    base_modes = MODES[:6]
    specs = [
        # name, ml opset, X dtype, post, labels, binary, as_tensor, base
        ("ml_tree_cls_v1_multi_strings_softmax", 1, np.float32, "SOFTMAX", ["a", "bb", "ccc"],
         False, False, True),
        ("ml_tree_cls_v1_multi_int_none", 2, np.int64, "NONE", [10, 20, 30, 40], False, False, False),
        ("ml_tree_cls_v1_binary_logistic", 1, np.float32, "LOGISTIC", [0, 1], True, False, True),
        ("ml_tree_cls_v3_binary_none_double", 3, np.float64, "NONE", [3, 7], True, True, False),
        ("ml_tree_cls_v3_single_label_logistic", 3, np.float32, "LOGISTIC", [1], True, False, False),
        ("ml_tree_cls_v3_multi_softmax_zero", 4, np.int32, "SOFTMAX_ZERO", ["x", "y", "z"], False,
         True, True),
        ("ml_tree_cls_v1_binary_strings_softmax", 1, np.float64, "SOFTMAX", ["no", "yes"], True,
         False, False),
        ("ml_tree_cls_v3_multi_probit", 3, np.float32, "PROBIT", [5, 6, 8], False, False, False),
    ]
    for i, (name, mlv, dt, pt, labels, binary, as_t, has_base) in enumerate(specs):
        r = rng(200 + i)
        nfeat, ntrees = 6, 3
        nc = len(labels)
        if binary:
            trees = [rand_tree(r, 3, nfeat, nc, base_modes, votes_one=0) for _ in range(ntrees)]
        else:
            trees = [rand_tree(r, 3, nfeat, nc, base_modes) for _ in range(ntrees)]
        if pt == "PROBIT":  # keep scores inside (0, 1): small positive votes, one tree
            def shrink(t):
                if t[0] == "leaf":
                    return ("leaf", [(c, float(np.float32(0.2 + 0.6 * abs(w) / (1 + abs(w)))))
                                     for c, w in t[1]])
                return t[:5] + (shrink(t[5]), shrink(t[6]))
            trees = [shrink(rand_tree(r, 3, nfeat, nc, base_modes, votes_all=True))]
        X = rand_x(r, 10, nfeat, nan=(i % 3 == 0))
        if dt in (np.int64, np.int32):
            X = np.round(X * 2)
        X = X.astype(dt)
        attrs, values, weights = v13_attrs(trees, r, "class_", shuffle=(i % 2 == 1))
        base = [float(np.float32(v)) for v in r.normal(size=nc)] if has_base else None
        if as_t:
            attrs["nodes_values_as_tensor"] = tens(np.array(values, np.float64))
            attrs["class_weights_as_tensor"] = tens(np.array(weights, np.float64))
            if base:
                attrs["base_values_as_tensor"] = tens(np.array(base, np.float64))
        else:
            attrs["nodes_values"] = values
            attrs["class_weights"] = weights
            if base:
                attrs["base_values"] = base
        if isinstance(labels[0], str):
            attrs["classlabels_strings"] = labels
        else:
            attrs["classlabels_int64s"] = labels
        attrs["post_transform"] = pt
        Xc = X.astype(np.float32).astype(np.float64) if dt in (np.int64, np.int32) else \
            X.astype(np.float64)
        score = aggregate(trees, Xc, nc, "SUM", v5=False)
        if base:
            score = score + np.array(base)
        y, z = classify(score, labels, attrs["class_ids"], pt)
        case(name, mknode("TreeEnsembleClassifier", ["X"], ["Y", "Z"], **attrs), [("X", X)],
             [("Y", y), ("Z", z)], mlv)


def tree_ensemble5_cases():
    specs = [
        # name, dtype, agg, post, modes, nan
        ("ml_tree_ensemble5_sum_member_float", np.float32, "SUM", "NONE", MODES, True),
        ("ml_tree_ensemble5_avg_softmax_double", np.float64, "AVERAGE", "SOFTMAX", MODES, False),
        ("ml_tree_ensemble5_max_float16", np.float16, "MAX", "NONE", MODES[:6], True),
        ("ml_tree_ensemble5_min_logistic_float", np.float32, "MIN", "LOGISTIC", MODES, False),
        ("ml_tree_ensemble5_sum_neq_nan_double", np.float64, "SUM", "SOFTMAX_ZERO",
         ["BRANCH_NEQ", "BRANCH_MEMBER", "BRANCH_LT"], True),
    ]
    for i, (name, dt, agg, pt, modes, nan) in enumerate(specs):
        r = rng(300 + i)
        nfeat, ntargets = 6, 2
        trees = []
        for t in range(5):
            tg = t % ntargets if agg in ("SUM", "AVERAGE") else None
            tr = rand_tree(r, 4, nfeat, ntargets, modes, votes_one=tg if tg is not None else 0)
            if agg in ("MIN", "MAX"):
                # every target voted in every row: one tree per target per pass
                tr = rand_tree(r, 4, nfeat, ntargets, modes, votes_one=t % ntargets)
            trees.append(tr)
        trees.append(("leaf", [(1, float(np.float32(0.25)))]))  # a one-leaf tree

        def rnd(t):  # thresholds and weights exactly representable in dt
            if t[0] == "leaf":
                return ("leaf", [(c, float(dt(w))) for c, w in t[1]])
            th = t[3] if isinstance(t[3], set) else float(dt(t[3]))
            return (t[0], t[1], t[2], th, t[4], rnd(t[5]), rnd(t[6]))
        trees = [rnd(t) for t in trees]
        X = rand_x(r, 12, nfeat, nan).astype(dt)
        attrs = v5_attrs(trees, dt)
        attrs.update(n_targets=ntargets, aggregate_function=AGG5[agg], post_transform=PT5[pt])
        score = aggregate(trees, X.astype(np.float64), ntargets, agg, v5=True)
        y = post(pt, score).astype(dt)
        case(name, mknode("TreeEnsemble", ["X"], ["Y"], **attrs), [("X", X)], [("Y", y)], 5)


# ---- linear models ---------------------------------------------------------------------

def linear_cases():
    specs = [
        # name, X dtype, E (coef rows), labels, post
        ("ml_linear_cls_multi_int_softmax", np.float32, 3, [4, 5, 6], "SOFTMAX"),
        ("ml_linear_cls_multi_strings_none", np.float64, 3, ["r", "g", "b"], "NONE"),
        ("ml_linear_cls_binary_strings_logistic", np.float64, 1, ["neg", "pos"], "LOGISTIC"),
        ("ml_linear_cls_binary_int_none", np.int64, 1, [0, 1], "NONE"),
        ("ml_linear_cls_one_label_threshold", np.int32, 1, [7], "NONE"),
        ("ml_linear_cls_one_label_logistic", np.float32, 1, [9], "LOGISTIC"),
        ("ml_linear_cls_multi_softmax_zero", np.float32, 4, [1, 2, 3, 4], "SOFTMAX_ZERO"),
        ("ml_linear_cls_multi_probit", np.float32, 2, [0, 1], "PROBIT"),
    ]
    for i, (name, dt, E, labels, pt) in enumerate(specs):
        r = rng(400 + i)
        C = 5
        X = r.normal(size=(9, C))
        if dt in (np.int64, np.int32):
            X = np.round(X * 3)
        X = X.astype(dt)
        coef = r.normal(size=(E, C)).astype(np.float32)
        icpt = r.normal(size=E).astype(np.float32)
        if pt == "PROBIT":  # scores inside (0, 1)
            coef *= 0.05
            icpt = np.full(E, 0.5, np.float32)
        if pt == "SOFTMAX_ZERO":
            coef[1] = 0
            icpt[1] = 0
        xc = X.astype(np.float64) if dt == np.float64 else X.astype(np.float32).astype(np.float64)
        s = xc @ coef.astype(np.float64).T + icpt.astype(np.float64)
        if E == 1 and len(labels) == 2:
            s = np.concatenate([-s, s], axis=1)
        z = post(pt, s)
        if z.shape[1] > 1:
            best = np.argmax(z, axis=1)
            y = [labels[b] for b in best]
        else:
            thr = 0.0 if pt == "NONE" else 0.5
            y = [labels[0] if v >= thr else 0 for v in z[:, 0]]
        y = np.array(y, dtype=object if isinstance(labels[0], str) else np.int64)
        attrs = dict(coefficients=coef.ravel().tolist(), intercepts=icpt.tolist(), post_transform=pt)
        if isinstance(labels[0], str):
            attrs["classlabels_strings"] = labels
        else:
            attrs["classlabels_ints"] = labels
        case(name, mknode("LinearClassifier", ["X"], ["Y", "Z"], **attrs), [("X", X)],
             [("Y", y), ("Z", z.astype(np.float32))], 1)
    specs = [
        ("ml_linear_reg_targets2_float", np.float32, 2, True, "NONE", (7, 4)),
        ("ml_linear_reg_1d_input_int32", np.int32, 1, True, "NONE", (4,)),
        ("ml_linear_reg_no_intercept_double", np.float64, 3, False, "NONE", (5, 3)),
        ("ml_linear_reg_int64_logistic", np.int64, 2, True, "LOGISTIC", (6, 3)),
    ]
    for i, (name, dt, T, with_i, pt, shape) in enumerate(specs):
        r = rng(450 + i)
        X = r.normal(size=shape) * 2
        if dt in (np.int64, np.int32):
            X = np.round(X)
        X = X.astype(dt)
        C = shape[-1]
        coef = r.normal(size=(T, C)).astype(np.float32)
        icpt = r.normal(size=T).astype(np.float32)
        x2 = X.reshape(-1, C)
        xc = x2.astype(np.float64) if dt == np.float64 else x2.astype(np.float32).astype(np.float64)
        s = xc @ coef.astype(np.float64).T + (icpt.astype(np.float64) if with_i else 0)
        y = post(pt, s).astype(np.float32)
        attrs = dict(coefficients=coef.ravel().tolist(), targets=T, post_transform=pt)
        if with_i:
            attrs["intercepts"] = icpt.tolist()
        case(name, mknode("LinearRegressor", ["X"], ["Y"], **attrs), [("X", X)], [("Y", y)], 1)


# ---- LabelEncoder -----------------------------------------------------------------------

def label_encoder_cases():
    S = lambda xs: np.array(xs, dtype=object)  # noqa: E731
    # version 1: strings -> their index, int64 -> strings
    cls = ["apple", "pear", "fig", "pear"]
    x = S(["fig", "kiwi", "pear", "apple", ""]).reshape(5)
    y = np.array([cls.index(v) if v in cls else -5 for v in x], np.int64)
    case("ml_label_encoder1_str_to_int", mknode("LabelEncoder", ["X"], ["Y"], classes_strings=cls,
                                                default_int64=-5), [("X", x)], [("Y", y)], 1)
    xi = np.array([[0, 3, -1], [2, 7, 1]], np.int64)
    yi = S([[cls[v] if 0 <= v < len(cls) else "none" for v in row] for row in xi])
    case("ml_label_encoder1_int_to_str", mknode("LabelEncoder", ["X"], ["Y"], classes_strings=cls,
                                                default_string="none"), [("X", xi)], [("Y", yi)], 1)
    # version 2: keys_* -> values_*; first of repeated keys; float keys bit for bit
    keys, vals = ["a", "b", "a", "c"], [1, 2, 3, 4]
    x = S(["c", "a", "zz", "b"])
    first = {}
    for k, v in zip(keys, vals):
        first.setdefault(k, v)
    y = np.array([first.get(v, 42) for v in x], np.int64)
    case("ml_label_encoder2_str_to_int", mknode("LabelEncoder", ["X"], ["Y"], keys_strings=keys,
                                                values_int64s=vals, default_int64=42),
         [("X", x)], [("Y", y)], 2)
    xi = np.array([5, -3, 8, 5, 0], np.int64)
    kd = {5: "five", -3: "minus three", 8: "eight"}
    y = S([kd.get(v, "_Unused") for v in xi])
    case("ml_label_encoder2_int_to_str", mknode("LabelEncoder", ["X"], ["Y"], keys_int64s=list(kd),
                                                values_strings=list(kd.values())),
         [("X", xi)], [("Y", y)], 3)
    kf = [0.5, float("nan"), -2.0, 0.0]
    vf = [10.0, 20.0, 30.0, 40.0]
    xf = np.array([[0.5, np.nan, 1.0], [-2.0, 0.0, -0.0]], np.float32)
    # bitwise: the NaN key matches the same NaN bits; -0.0 differs from 0.0
    bits = lambda v: np.array([v], np.float32).view(np.uint32)[0]  # noqa: E731
    table = {bits(k): v for k, v in zip(kf, vf)}
    y = np.array([[table.get(bits(v), -1.5) for v in row] for row in xf], np.float32)
    case("ml_label_encoder2_float_bitwise", mknode("LabelEncoder", ["X"], ["Y"], keys_floats=kf,
                                                   values_floats=vf, default_float=-1.5),
         [("X", xf)], [("Y", y)], 2)
    # version 4: tensors of int32 / int16 / double / string, default_tensor, last key wins,
    # NaN matches any NaN
    k = np.array([3, 1, 3, 9], np.int32)
    v = np.array([0.25, 1.5, 2.75, -4.0], np.float64)
    x = np.array([[3, 1], [9, 4]], np.int32)
    last = {}
    for a, b in zip(k, v):
        last[int(a)] = b
    y = np.array([[last.get(int(a), 7.5) for a in row] for row in x], np.float64)
    case("ml_label_encoder4_int32_to_double", mknode(
        "LabelEncoder", ["X"], ["Y"], keys_tensor=tens(k), values_tensor=tens(v),
        default_tensor=tens(np.array([7.5], np.float64))), [("X", x)], [("Y", y)], 4)
    k = np.array([0.5, np.nan, -1.25], np.float64)
    v = np.array([11, 22, 33], np.int16)
    x = np.array([np.nan, -1.25, 0.5, 2.0], np.float64)
    y = np.array([22, 33, 11, -1], np.int16)
    case("ml_label_encoder4_double_nan_to_int16", mknode(
        "LabelEncoder", ["X"], ["Y"], keys_tensor=tens(k), values_tensor=tens(v),
        default_tensor=tens(np.array([-1], np.int16))), [("X", x)], [("Y", y)], 4)
    k = S(["x", "y"])
    v = np.array(["ex", "why"], dtype=object)
    x = S(["y", "q", "x"])
    y = S(["why", "dflt", "ex"])
    case("ml_label_encoder4_str_tensors", mknode(
        "LabelEncoder", ["X"], ["Y"], keys_tensor=tens(k), values_tensor=tens(v),
        default_tensor=tens(S(["dflt"]))), [("X", x)], [("Y", y)], 4)
    x = np.array([[1, 2], [7, 2]], np.int64)
    y = np.array([[-1, 0.5], [-0.0, 0.5]], np.float32)
    case("ml_label_encoder4_int64_to_float_lists", mknode(
        "LabelEncoder", ["X"], ["Y"], keys_int64s=[2, 1, 1], values_floats=[0.5, 9.0, -1.0]),
        [("X", x)], [("Y", y)], 4)
    x = np.array([0.0, -0.0, np.nan], np.float32)
    y = np.array([5, 5, 6], np.int32)
    case("ml_label_encoder4_float_zero_nan_int32", mknode(
        "LabelEncoder", ["X"], ["Y"], keys_floats=[0.0, float("nan")],
        values_tensor=tens(np.array([5, 6], np.int32))), [("X", x)], [("Y", y)], 4)


# ---- Scaler, Normalizer, Binarizer, Imputer, ArrayFeatureExtractor, OneHotEncoder,
# ---- FeatureVectorizer, CategoryMapper ------------------------------------------------------

def feature_cases():
    r = rng(500)
    for dt in (np.float32, np.float64, np.int64, np.int32):
        tag = np.dtype(dt).name
        x = (r.normal(size=(4, 3)) * 3).astype(dt)
        off, sc = [0.5, -1.0, 2.0], [2.0, 0.25, -1.5]
        y = ((x.astype(np.float64) - np.array(off)) * np.array(sc)).astype(np.float32)
        case("ml_scaler_" + tag, mknode("Scaler", ["X"], ["Y"], offset=off, scale=sc),
             [("X", x)], [("Y", y)], 1)
    x = r.normal(size=(2, 3, 4)).astype(np.float32)
    y = ((x.astype(np.float64) - 1.5) * 3.0).astype(np.float32)
    case("ml_scaler_broadcast_rank3", mknode("Scaler", ["X"], ["Y"], offset=[1.5], scale=[3.0]),
         [("X", x)], [("Y", y)], 1)

    for norm in ("MAX", "L1", "L2"):
        for dt in (np.float32, np.int64):
            x = (r.normal(size=(4, 5)) * 4).astype(dt)
            x[2] = 0  # a zero row stays as it is
            xd = x.astype(np.float64)
            if norm == "MAX":  # max |X| (the reference; the spec's formula writes max(X))
                d = np.abs(xd).max(axis=1, keepdims=True)
            elif norm == "L1":
                d = np.abs(xd).sum(axis=1, keepdims=True)
            else:
                d = np.sqrt((xd * xd).sum(axis=1, keepdims=True))
            y = np.where(d != 0, xd / np.where(d == 0, 1, d), xd).astype(np.float32)
            case("ml_normalizer_%s_%s" % (norm.lower(), np.dtype(dt).name),
                 mknode("Normalizer", ["X"], ["Y"], norm=norm), [("X", x)], [("Y", y)], 1)
    x = np.array([1.0, -3.0, 2.0], np.float64)
    y = (x / 3.0).astype(np.float32)
    case("ml_normalizer_max_1d_double", mknode("Normalizer", ["X"], ["Y"], norm="MAX"),
         [("X", x)], [("Y", y)], 1)

    for dt in (np.float32, np.float64, np.int64, np.int32):
        x = (r.normal(size=(3, 4)) * 3).astype(dt)
        if dt in (np.float32, np.float64):
            x[0, 0] = np.nan
        y = np.where(x > 0.5, 1, 0).astype(dt)
        case("ml_binarizer_" + np.dtype(dt).name, mknode("Binarizer", ["X"], ["Y"], threshold=0.5),
             [("X", x)], [("Y", y)], 1)

    x = r.normal(size=(4, 3)).astype(np.float32)
    x[x < -0.5] = np.nan
    vals = [9.0, 8.0, 7.0]
    y = x.copy()
    for j in range(3):
        y[np.isnan(y[:, j]), j] = vals[j]
    case("ml_imputer_nan_float", mknode("Imputer", ["X"], ["Y"], imputed_value_floats=vals,
                                        replaced_value_float=float("nan")), [("X", x)], [("Y", y)], 1)
    x = np.array([[1.5, 0.0], [0.0, 2.0]], np.float64)
    y = np.array([[1.5, -1.0], [-1.0, 2.0]], np.float64)
    case("ml_imputer_zero_double_broadcast", mknode("Imputer", ["X"], ["Y"],
                                                    imputed_value_floats=[-1.0]),
         [("X", x)], [("Y", y)], 1)
    for dt in (np.int64, np.int32):
        x = np.array([[-1, 5, -1], [3, -1, 2]], dt)
        y = np.array([[10, 5, 30], [3, 20, 2]], dt)
        case("ml_imputer_" + np.dtype(dt).name, mknode(
            "Imputer", ["X"], ["Y"], imputed_value_int64s=[10, 20, 30], replaced_value_int64=-1),
            [("X", x)], [("Y", y)], 1)

    for dt in (np.float32, np.float64, np.int64, np.int32, object):
        x = r.normal(size=(2, 3, 5)) * 3
        x = np.array([["s%d" % int(v) for v in row.ravel()] for row in x.reshape(2, 15)],
                     dtype=object).reshape(2, 3, 5) if dt is object else x.astype(dt)
        idx = np.array([4, 0, 2, 2], np.int64)
        y = x[..., idx]
        case("ml_array_feature_extractor_" + ("string" if dt is object else np.dtype(dt).name),
             mknode("ArrayFeatureExtractor", ["X", "I"], ["Z"]), [("X", x), ("I", idx)],
             [("Z", y)], 1)
    x = np.array([1.0, 2.0, 3.0], np.float32)
    idx = np.array([[2, 0]], np.int64)
    case("ml_array_feature_extractor_1d", mknode("ArrayFeatureExtractor", ["X", "I"], ["Z"]),
         [("X", x), ("I", idx)], [("Z", np.array([[3.0, 1.0]], np.float32))], 1)

    cats = [4, 1, 7]
    for dt in (np.int64, np.int32, np.float32, np.float64):
        x = np.array([[1, 7, 3], [4, 4, 1]], dt) if dt in (np.int64, np.int32) else \
            np.array([[1.7, 7.2, 3.0], [4.9, -0.5, 1.0]], dt)
        xi = np.trunc(x.astype(np.float64)).astype(np.int64)
        y = np.array([[[1.0 if v == c else 0.0 for c in cats] for v in row] for row in xi],
                     np.float32)
        case("ml_one_hot_encoder_" + np.dtype(dt).name, mknode(
            "OneHotEncoder", ["X"], ["Y"], cats_int64s=cats, zeros=1), [("X", x)], [("Y", y)], 1)
    cs = ["red", "green", "blue"]
    x = np.array(["blue", "red", "pink", "green"], dtype=object)
    y = np.array([[1.0 if v == c else 0.0 for c in cs] for v in x], np.float32)
    case("ml_one_hot_encoder_string", mknode("OneHotEncoder", ["X"], ["Y"], cats_strings=cs),
         [("X", x)], [("Y", y)], 1)

    a = r.normal(size=(3, 2)).astype(np.float32)
    b = (r.normal(size=(3, 4)) * 5).astype(np.int64)
    c = r.normal(size=(3, 1)).astype(np.float64)
    dims = [3, 2, 1]  # a padded, b cut, c as it is
    y = np.zeros((3, 6), np.float32)
    y[:, :2] = a
    y[:, 3:5] = b[:, :2]
    y[:, 5:] = c
    # FeatureVectorizer's inputs share one type parameter: same dtype for all inputs
    b = b.astype(np.float32)
    c = c.astype(np.float32)
    y[:, 3:5] = b[:, :2]
    y[:, 5:] = c
    case("ml_feature_vectorizer_pad_cut", mknode("FeatureVectorizer", ["A", "B", "C"], ["Y"],
                                                 inputdimensions=dims),
         [("A", a), ("B", b), ("C", c)], [("Y", y)], 1)
    for dt in (np.int32, np.int64, np.float64):
        a = (r.normal(size=(4,)) * 4).astype(dt)
        bb = (r.normal(size=(1, 2)) * 4).astype(dt)
        y = np.concatenate([a.reshape(1, 4), bb], axis=1).astype(np.float32)
        case("ml_feature_vectorizer_1d_" + np.dtype(dt).name, mknode(
            "FeatureVectorizer", ["A", "B"], ["Y"], inputdimensions=[4, 2]),
            [("A", a), ("B", bb)], [("Y", y)], 1)

    ci, cs = [10, 20, 30, 20], ["ten", "twenty", "thirty", "twenty again"]
    x = np.array([["thirty", "ten"], ["nine", "twenty again"]], dtype=object)
    m = {}
    for i_, s_ in zip(ci, cs):
        m.setdefault(s_, i_)
    y = np.array([[m.get(v, -9) for v in row] for row in x], np.int64)
    case("ml_category_mapper_str_to_int", mknode("CategoryMapper", ["X"], ["Y"], cats_int64s=ci,
                                                 cats_strings=cs, default_int64=-9),
         [("X", x)], [("Y", y)], 1)
    x = np.array([20, 5, 30], np.int64)
    m = {}
    for i_, s_ in zip(ci, cs):
        m.setdefault(i_, s_)
    y = np.array([m.get(v, "_Unused") for v in x], dtype=object)
    case("ml_category_mapper_int_to_str", mknode("CategoryMapper", ["X"], ["Y"], cats_int64s=ci,
                                                 cats_strings=cs), [("X", x)], [("Y", y)], 1)


# ---- SVMs -------------------------------------------------------------------------------------

def kern(kind, a, b, gamma, coef0, degree):
    if kind == "RBF":
        return math.exp(-gamma * float(((a - b) ** 2).sum()))
    d = float(a @ b)
    if kind == "POLY":
        return (d * gamma + coef0) ** degree
    if kind == "SIGMOID":
        return math.tanh(d * gamma + coef0)
    return d


def coupling(k, r):
    """libsvm's multiclass_probability (pairwise coupling)."""
    Q = np.zeros((k, k))
    p = np.full(k, 1.0 / k)
    for t in range(k):
        Q[t, t] = sum(r[j, t] ** 2 for j in range(k) if j != t)
        for j in range(t):
            Q[t, j] = Q[j, t]
        for j in range(t + 1, k):
            Q[t, j] = -r[j, t] * r[t, j]
    eps = 0.005 / k
    for _ in range(max(100, k)):
        Qp = Q @ p
        pQp = p @ Qp
        if np.max(np.abs(Qp - pQp)) < eps:
            break
        for t in range(k):
            diff = (-Qp[t] + pQp) / Q[t, t]
            p[t] += diff
            pQp = (pQp + diff * (diff * Q[t, t] + 2 * Qp[t])) / (1 + diff) / (1 + diff)
            Qp = (Qp + diff * Q[t, :]) / (1 + diff)
            p = p / (1 + diff)
    return p


def svc_expected(X, labels, kind, kp, coef, sv, rho, vpc, pa, pb, pt):
    gamma, coef0, degree = kp
    cc = max(len(labels), 1)
    vc = sum(vpc) if vpc else 0
    all_pos = min(coef) >= 0
    Y, Z = [], []
    for x in X.astype(np.float64):
        votes = None
        has_proba = False
        if vc == 0:
            C = np.array(coef, np.float64).reshape(cc, -1)
            scores = np.array([rho[0] + float(x @ C[j]) for j in range(cc)])
        else:
            S = np.array(sv, np.float64).reshape(vc, -1)
            C = np.array(coef, np.float64).reshape(-1, vc)
            K = np.array([kern(kind, x, S[j], gamma, coef0, degree) for j in range(vc)])
            start = np.concatenate([[0], np.cumsum(vpc)[:-1]]).astype(int)
            votes = np.zeros(cc)
            scores = []
            e = 0
            for a in range(cc):
                for b in range(a + 1, cc):
                    s1 = C[b - 1, start[a]:start[a] + vpc[a]] @ K[start[a]:start[a] + vpc[a]]
                    s2 = C[a, start[b]:start[b] + vpc[b]] @ K[start[b]:start[b] + vpc[b]]
                    sc = rho[e] + s1 + s2
                    scores.append(sc)
                    votes[a if sc > 0 else b] += 1
                    e += 1
            scores = np.array(scores)
            if pa:
                R = np.zeros((cc, cc))
                e = 0
                for a in range(cc):
                    for b in range(a + 1, cc):
                        v = 1 - logistic(np.array(scores[e] * pa[e] + pb[e]))
                        v = min(max(float(v), 1e-7), 1 - 1e-7)
                        R[a, b], R[b, a] = v, 1 - v
                        e += 1
                scores = coupling(cc, R)
                has_proba = True
        mw = votes if votes is not None else scores
        best = int(np.argmax(mw))
        maxw = mw[best]
        add = -1
        raw = False
        lab = best
        if len(rho) == 1:
            if len(labels) == 2:
                add = 2
                lab = 1 if (not has_proba and all_pos and maxw >= 0.5) else best
            else:
                raw = True
                lab = 1 if maxw > 0 else 0
        n = scores.size
        if n >= 2:
            z = post(pt, scores.reshape(1, -1))[0]
        elif pt == "PROBIT":
            z = post("PROBIT", scores.reshape(1, -1))[0]
        elif add == 2:
            z = post(pt, np.array([[-scores[0], scores[0]]]))[0]
        else:
            z = scores
        Z.append(z)
        Y.append(lab if raw or not labels else labels[lab])
    strs = labels and isinstance(labels[0], str)
    return (np.array(Y, dtype=object if strs else np.int64), np.array(Z, np.float32))


def svm_cases():
    specs = [
        # name, X dtype, labels, kernel, kernel_params, vpc, proba, post
        ("ml_svm_cls_linear_3class_int", np.float32, [3, 5, 9], "LINEAR", (0.0, 0.0, 0), [2, 3, 2],
         False, "NONE"),
        ("ml_svm_cls_rbf_3class_proba_strings", np.float64, ["a", "b", "c"], "RBF", (1.0, 0.0, 0),
         [3, 2, 3], True, "NONE"),
        ("ml_svm_cls_poly_binary_int", np.float32, [0, 1], "POLY", (0.5, 0.0, 3), [3, 2], False,
         "NONE"),
        ("ml_svm_cls_sigmoid_binary_logistic", np.int64, [4, 8], "SIGMOID", (0.1, 0.2, 0), [2, 3],
         False, "LOGISTIC"),
        ("ml_svm_cls_rbf_binary_proba", np.float32, ["no", "yes"], "RBF", (0.5, 0.0, 0), [3, 3], True,
         "NONE"),
        ("ml_svm_cls_rbf_4class_softmax", np.int32, [1, 2, 3, 4], "RBF", (0.2, 0.0, 0), [2, 1, 2, 2],
         False, "SOFTMAX"),
        ("ml_svm_cls_binary_all_positive", np.float32, [0, 1], "LINEAR", (0.0, 0.0, 0), [2, 2],
         False, "NONE"),
        ("ml_svm_cls_liblinear_binary", np.float64, ["neg", "pos"], "LINEAR", (0.0, 0.0, 0), None,
         False, "LOGISTIC"),
        ("ml_svm_cls_liblinear_3class_one_rho", np.float32, [7, 8, 9], "LINEAR", (0.0, 0.0, 0), None,
         False, "NONE"),
    ]
    for i, (name, dt, labels, kind, kp, vpc, proba, pt) in enumerate(specs):
        r = rng(600 + i)
        F = 4
        cc = len(labels)
        X = r.normal(size=(8, F)) * 1.5
        if dt in (np.int64, np.int32):
            X = np.round(X)
        X = X.astype(dt)
        attrs = dict(kernel_type=kind, kernel_params=[float(v) for v in kp], post_transform=pt)
        if vpc:
            vc = sum(vpc)
            sv = r.normal(size=(vc, F)).astype(np.float32).ravel().tolist()
            coef = r.normal(size=(cc - 1) * vc).astype(np.float32)
            if name.endswith("all_positive"):
                coef = np.abs(coef)
            coef = coef.tolist()
            npairs = cc * (cc - 1) // 2
            rho = r.normal(size=npairs).astype(np.float32).tolist()
            attrs.update(support_vectors=sv, vectors_per_class=vpc)
        else:
            sv = []
            coef = r.normal(size=cc * F).astype(np.float32).tolist()
            rho = [float(np.float32(r.normal()))]
        attrs.update(coefficients=coef, rho=rho)
        pa = pb = None
        if proba:
            npairs = cc * (cc - 1) // 2
            pa = (-np.abs(r.normal(size=npairs)) - 0.5).astype(np.float32).tolist()
            pb = r.normal(size=npairs).astype(np.float32).tolist()
            attrs.update(prob_a=pa, prob_b=pb)
        if isinstance(labels[0], str):
            attrs["classlabels_strings"] = labels
        else:
            attrs["classlabels_ints"] = labels
        y, z = svc_expected(X, labels, kind, (float(np.float32(kp[0])), float(np.float32(kp[1])),
                                              int(kp[2])), coef, sv, rho, vpc, pa, pb, pt)
        case(name, mknode("SVMClassifier", ["X"], ["Y", "Z"], **attrs), [("X", X)],
             [("Y", y), ("Z", z)], 1)

    specs = [
        ("ml_svm_reg_rbf_float", np.float32, "RBF", (0.4, 0.0, 0), 5, 0),
        ("ml_svm_reg_poly_double", np.float64, "POLY", (0.3, 0.5, 2), 4, 0),
        ("ml_svm_reg_linear_mode_int32", np.int32, "LINEAR", (0.0, 0.0, 0), 0, 0),
        ("ml_svm_reg_one_class_sigmoid_int64", np.int64, "SIGMOID", (0.2, -0.1, 0), 6, 1),
    ]
    for i, (name, dt, kind, kp, ns, oc) in enumerate(specs):
        r = rng(700 + i)
        F = 3
        X = r.normal(size=(7, F)) * 2
        if dt in (np.int64, np.int32):
            X = np.round(X)
        X = X.astype(dt)
        rho = [float(np.float32(r.normal()))]
        g, c0, dg = float(np.float32(kp[0])), float(np.float32(kp[1])), int(kp[2])
        attrs = dict(kernel_type=kind, kernel_params=[float(v) for v in kp], rho=rho,
                     n_supports=ns, one_class=oc)
        xs = X.astype(np.float64)
        if ns:
            sv = r.normal(size=(ns, F)).astype(np.float32)
            coef = r.normal(size=ns).astype(np.float32)
            attrs.update(support_vectors=sv.ravel().tolist(), coefficients=coef.tolist())
            s = np.array([sum(float(coef[j]) * kern(kind, x, sv[j].astype(np.float64), g, c0, dg)
                              for j in range(ns)) for x in xs]) + rho[0]
        else:
            coef = r.normal(size=F).astype(np.float32)
            attrs.update(coefficients=coef.tolist())
            s = xs @ coef.astype(np.float64) + rho[0]
        if oc:
            s = np.where(s > 0, 1.0, -1.0)
        y = s.reshape(-1, 1).astype(np.float32)
        case(name, mknode("SVMRegressor", ["X"], ["Y"], **attrs), [("X", X)], [("Y", y)], 1)


if __name__ == "__main__":
    tree_regressor_cases()
    tree_classifier_cases()
    tree_ensemble5_cases()
    linear_cases()
    label_encoder_cases()
    feature_cases()
    svm_cases()
    print("%d ml cases written" % COUNT[0])
