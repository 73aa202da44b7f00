"""QLinearMatMul-21 with float8 a, b and y (e4m3fn, e4m3fnuz, e5m2,
e5m2fnuz), which onnx 1.12 and numpy lack. The specification's formula,
with the float8 elements as their values (quant_lowp.decode, brute force
from the format definitions):
    C = sum_k (a[m,k] - a_zero_point) * (b[k,n] - b_zero_point)
    y = saturate(C * (a_scale * b_scale / y_scale) + y_zero_point)
the multiplier computed in the scales' type (float32 or float16, as the
reference implementation's numpy does); a float8 y takes the nearest value,
ties to even, saturating at the largest finite one (QuantizeLinear's
default for float8, quant_lowp.encode); an int8/uint8 y rounds half to even
and clamps. Operands mix types freely (T1, T2, T3 are independent).
    /usr/bin/python3 tools/spec_cases/qlinearmatmul_f8.py
"""
import numpy as np
from onnx import helper

from common import rng
from quant_lowp import E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, NAMES, decode, encode, lowp_tensor, np_tensor, write

F8 = (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ)


def finite_codes(dt, lim):
    """Codes of finite values with |v| <= lim."""
    nb = 8
    return [c for c in range(1 << nb)
            if np.isfinite(decode(dt, c)) and abs(decode(dt, c)) <= lim]


def operand(r, dt, shape, lim=8.0):
    """(codes or ints, values) of an operand of type dt (a float8 code or numpy int)."""
    if dt in F8:
        pool = finite_codes(dt, lim)
        codes = r.choice(pool, size=int(np.prod(shape)))
        return codes, np.array([decode(dt, int(c)) for c in codes]).reshape(shape)
    vals = r.integers(-20 if dt == np.int8 else 0, 40, size=shape).astype(dt)
    return vals, vals.astype(np.float64)


def tensor(name, dt, shape, elems):
    if dt in F8:
        return lowp_tensor(name, dt, list(shape), elems)
    return np_tensor(name, np.asarray(elems, dtype=dt).reshape(shape))


def tname(dt):
    return NAMES[dt] if dt in F8 else np.dtype(dt).name


def case(r, adt, bdt, ydt, ashape, bshape, sdt=np.float32, per_row=False, big=False):
    a_codes, av = operand(r, adt, ashape, 448.0 if big else 8.0)
    b_codes, bv = operand(r, bdt, bshape, 448.0 if big else 8.0)
    M, N = ashape[-2], bshape[-1]
    # zero points: 0 for float8 (what QuantizeLinear writes), small ints otherwise
    za = 0 if adt in F8 else 3
    zb = 0 if bdt in F8 else 2
    a_scale = (r.uniform(0.5, 1.5, size=(M,)) if per_row else np.array(r.uniform(0.5, 1.5))).astype(sdt)
    b_scale = (r.uniform(0.5, 1.5, size=(N,)) if per_row else np.array(r.uniform(0.5, 1.5))).astype(sdt)
    y_scale = np.array(r.uniform(2.0, 4.0) if not big else 0.01).astype(sdt)
    yz_int = 0 if ydt in F8 else 5
    A = av - float(za)
    B = bv - float(zb)
    C = np.zeros(np.broadcast_shapes(ashape[:-2], bshape[:-2]) + (M, N))
    for idx in np.ndindex(C.shape[:-2]):
        ia = idx[len(idx) - (len(ashape) - 2):] if len(ashape) > 2 else ()
        ib = idx[len(idx) - (len(bshape) - 2):] if len(bshape) > 2 else ()
        for m in range(M):
            for n in range(N):
                s = 0.0
                for k in range(ashape[-1]):
                    s += A[ia + (m, k)] * B[ib + (k, n)]
                C[idx + (m, n)] = s
    sa = a_scale.reshape(M, 1) if per_row else a_scale
    sb = b_scale.reshape(1, N) if per_row else b_scale
    mult = ((sa * sb).astype(sdt) / y_scale).astype(sdt).astype(np.float64)
    D = C * mult
    if ydt in F8:
        y = [encode(ydt, float(v) + yz_int, saturate=True) for v in D.reshape(-1)]
    else:
        info = np.iinfo(ydt)
        y = list(np.clip(np.rint(D) + yz_int, info.min, info.max).astype(ydt).reshape(-1))
    name = "qlinearmatmul21_%s_%s_%s%s%s%s" % (tname(adt), tname(bdt), tname(ydt),
                                              "_perrow" if per_row else "",
                                              "_f16scale" if sdt == np.float16 else "",
                                              "_saturate" if big else "")
    node = helper.make_node("QLinearMatMul", ["a", "a_scale", "a_zero_point", "b", "b_scale",
                                              "b_zero_point", "y_scale", "y_zero_point"], ["y"])
    ins = [tensor("a", adt, ashape, a_codes.reshape(-1)),
           np_tensor("a_scale", a_scale),
           tensor("a_zero_point", adt, (), [encode(adt, 0.0) if adt in F8 else za]),
           tensor("b", bdt, bshape, b_codes.reshape(-1)),
           np_tensor("b_scale", b_scale),
           tensor("b_zero_point", bdt, (), [encode(bdt, 0.0) if bdt in F8 else zb]),
           np_tensor("y_scale", y_scale),
           tensor("y_zero_point", ydt, (), [encode(ydt, 0.0) if ydt in F8 else yz_int])]
    outs = [tensor("y", ydt, C.shape, y)]
    write(name, node, ins, outs, 21)


def main():
    r = rng(21)
    for dt in F8:
        case(r, dt, dt, dt, (2, 3), (3, 4))
    case(r, E4M3FN, E5M2, E4M3FNUZ, (2, 2, 5), (5, 3), per_row=True)
    case(r, E5M2FNUZ, E4M3FN, np.uint8, (3, 4), (2, 4, 2))
    case(r, np.int8, E4M3FN, np.int8, (2, 3), (3, 2), sdt=np.float16)
    case(r, E4M3FN, E4M3FN, E4M3FN, (2, 4), (4, 3), big=True)
    case(r, E5M2, E5M2, E5M2, (2, 4), (4, 3), big=True)


if __name__ == "__main__":
    main()
