"""Signal-processing cases beyond the ONNX 1.12 suite: DFT-20 (axis as an
input), the newest DFT text's one-sided modes at opsets 17 and 20 (RFFT:
real input, bins 0..n/2; IRFFT: one-sided complex input extended by
conjugate symmetry, real output [..., 1], dft_length defaulting to
2 * (bins - 1)), dft_length padding and truncation, lengths that are
prime, odd and powers of two, float64 and float16; STFT with complex
signals, no window, float64; the window functions with integer and float64
outputs; MelWeightMatrix with other parameters and output types.

Expected values come from numpy's FFT in float64 following the operator
text, never from onnx-run:
    /usr/bin/python3 tools/spec_cases/spectral.py
"""
import numpy as np
from onnx import TensorProto, helper

from common import rng, write_case


def to_complex(x):
    return x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0].astype(np.complex128)


def split(c, dtype):
    return np.stack([c.real, c.imag], axis=-1).astype(dtype)


def dft_ref(x, axis, n=None, inverse=0, onesided=0):
    """The specification's DFT on x ([..., 1 or 2]), axis in signal dims."""
    r = x.ndim
    a = axis + r if axis < 0 else axis
    c = to_complex(x.astype(np.float64))
    if inverse and onesided:  # IRFFT
        m = c.shape[a]
        n = n if n is not None else 2 * (m - 1)
        y = np.fft.irfft(c, n=n, axis=a)
        return y[..., np.newaxis].astype(x.dtype)
    n = n if n is not None else c.shape[a]
    y = np.fft.ifft(c, n=n, axis=a) if inverse else np.fft.fft(c, n=n, axis=a)
    if onesided:
        y = np.take(y, np.arange(n // 2 + 1), axis=a)
    return split(y, x.dtype)


def dft_case(name, x, opset, axis=None, n=None, inverse=0, onesided=0, axis_as_input=True):
    attrs = {}
    if inverse:
        attrs["inverse"] = 1
    if onesided:
        attrs["onesided"] = 1
    ins = ["x", "" if n is None else "n"]
    inputs = [("x", x)]
    if n is not None:
        inputs.append(("n", np.array(n, dtype=np.int64)))
    if opset >= 20:
        if axis is not None:
            ins.append("axis")
            inputs.append(("axis", np.array(axis, dtype=np.int64)))
        eff_axis = -2 if axis is None else axis
    else:
        if axis is not None:
            attrs["axis"] = axis
        eff_axis = 1 if axis is None else axis
    while ins and ins[-1] == "":
        ins.pop()
    node = helper.make_node("DFT", ins, ["y"], **attrs)
    y = dft_ref(x, eff_axis, n, inverse, onesided)
    write_case(name, node, inputs, [("y", y)], opset)


def stft_ref(x, step, window, flen, onesided):
    c = to_complex(x.astype(np.float64))
    b, length = c.shape
    frames = (length - flen) // step + 1
    w = np.ones(flen) if window is None else window.astype(np.float64)
    y = np.zeros((b, frames, flen // 2 + 1 if onesided else flen), dtype=np.complex128)
    for bi in range(b):
        for f in range(frames):
            seg = np.zeros(flen, dtype=np.complex128)
            k = min(flen, len(w), length - f * step)
            seg[:k] = c[bi, f * step:f * step + k] * w[:k]
            spec = np.fft.fft(seg)
            y[bi, f] = spec[:y.shape[2]]
    return split(y, x.dtype)


def stft_case(name, x, step, window=None, flen=None, onesided=None):
    attrs = {} if onesided is None else {"onesided": onesided}
    ins = ["x", "step", "" if window is None else "w", "" if flen is None else "flen"]
    while ins[-1] == "":
        ins.pop()
    inputs = [("x", x), ("step", np.array(step, dtype=np.int64))]
    if window is not None:
        inputs.append(("w", window))
    if flen is not None:
        inputs.append(("flen", np.array(flen, dtype=np.int64)))
    node = helper.make_node("STFT", ins, ["y"], **attrs)
    eff_flen = flen if flen is not None else (len(window) if window is not None else x.shape[1])
    y = stft_ref(x, step, window, eff_flen, 1 if onesided is None else onesided)
    write_case(name, node, inputs, [("y", y)], 17)


NP = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
      TensorProto.FLOAT16: np.float16, TensorProto.INT32: np.int32,
      TensorProto.INT64: np.int64, TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8}


def window_case(name, op, size, periodic=None, dt=None):
    a = {"HannWindow": (0.5, 0.5, 0.0), "HammingWindow": (25 / 46, 21 / 46, 0.0),
         "BlackmanWindow": (0.42, 0.5, 0.08)}[op]
    N = size if periodic in (None, 1) else size - 1
    k = np.arange(size, dtype=np.float64)
    w = a[0] - a[1] * np.cos(2 * np.pi * k / N) + a[2] * np.cos(4 * np.pi * k / N)
    attrs = {}
    if periodic is not None:
        attrs["periodic"] = periodic
    if dt is not None:
        attrs["output_datatype"] = dt
    node = helper.make_node(op, ["size"], ["y"], **attrs)
    write_case(name, node, [("size", np.array(size, dtype=np.int64))],
               [("y", w.astype(NP[dt or TensorProto.FLOAT]))], 17)


def mel_ref(mels, dft, sr, lo, hi, dt):
    bins = dft // 2 + 1
    lm = 2595 * np.log10(1 + lo / 700)
    hm = 2595 * np.log10(1 + hi / 700)
    step = (hm - lm) / (mels + 2)
    pts = 700 * (10 ** ((np.arange(mels + 2) * step + lm) / 2595) - 1)
    pts = np.floor((dft + 1) * pts / sr).astype(int)
    out = np.zeros((bins, mels))
    for i in range(mels):
        l, c, h = pts[i], pts[i + 1], pts[i + 2]
        if c == l:
            out[c, i] = 1
        else:
            for j in range(l, c + 1):
                out[j, i] = (j - l) / (c - l)
        for j in range(c, h):
            out[j, i] = (h - j) / (h - c)
    return out.astype(NP[dt])


def mel_case(name, mels, dft, sr, lo, hi, dt=None, hz_dtype=np.float32):
    attrs = {} if dt is None else {"output_datatype": dt}
    node = helper.make_node("MelWeightMatrix", ["m", "d", "sr", "lo", "hi"], ["y"], **attrs)
    inputs = [("m", np.array(mels, dtype=np.int64)), ("d", np.array(dft, dtype=np.int64)),
              ("sr", np.array(sr, dtype=np.int64)), ("lo", np.array(lo, dtype=hz_dtype)),
              ("hi", np.array(hi, dtype=hz_dtype))]
    y = mel_ref(mels, dft, sr, float(np.float64(hz_dtype(lo))), float(np.float64(hz_dtype(hi))),
                dt or TensorProto.FLOAT)
    write_case(name, node, inputs, [("y", y)], 17)


def main():
    r = rng(17)
    real = r.standard_normal((2, 8, 3, 1)).astype(np.float32)
    cplx = r.standard_normal((2, 8, 3, 2)).astype(np.float32)
    # DFT-20: axis input
    dft_case("dft20_default_axis", real, 20)
    dft_case("dft20_axis1", real, 20, axis=1)
    dft_case("dft20_axis_neg3", cplx, 20, axis=-3)
    dft_case("dft20_axis0", cplx, 20, axis=0)
    dft_case("dft20_inverse_complex", cplx, 20, axis=1, inverse=1)
    dft_case("dft20_inverse_real", real, 20, axis=1, inverse=1)
    dft_case("dft20_rfft", real, 20, axis=1, onesided=1)
    dft_case("dft20_rfft_odd_length", r.standard_normal((3, 7, 1)).astype(np.float32), 20,
             axis=1, onesided=1)
    dft_case("dft20_irfft_default_length", cplx[:, :5], 20, axis=1, inverse=1, onesided=1)
    dft_case("dft20_irfft_odd_length", cplx[:, :5], 20, axis=1, n=9, inverse=1, onesided=1)
    dft_case("dft20_irfft_padded", cplx[:, :3], 20, axis=1, n=10, inverse=1, onesided=1)
    dft_case("dft20_pad", real, 20, axis=1, n=13)
    dft_case("dft20_truncate", cplx, 20, axis=1, n=5)
    dft_case("dft20_prime_67", r.standard_normal((2, 67, 2)).astype(np.float32), 20, axis=1)
    dft_case("dft20_prime_131_bluestein", r.standard_normal((1, 131, 2)).astype(np.float32),
             20, axis=1)
    dft_case("dft20_len_100", r.standard_normal((2, 100, 1)).astype(np.float32), 20, axis=-2)
    dft_case("dft20_pow2_256", r.standard_normal((2, 256, 2)).astype(np.float32), 20, axis=1)
    dft_case("dft20_double", r.standard_normal((2, 12, 2)).astype(np.float64), 20, axis=1)
    dft_case("dft20_float16", (r.standard_normal((2, 6, 1)) * 0.5).astype(np.float16), 20,
             axis=1)
    dft_case("dft20_empty_batch", np.zeros((0, 4, 1), dtype=np.float32), 20, axis=1)
    # DFT-17 with the newest text's one-sided modes and dft_length
    dft_case("dft17_rfft", real, 17, axis=1, onesided=1)
    dft_case("dft17_irfft", cplx[:, :5], 17, axis=1, inverse=1, onesided=1)
    dft_case("dft17_length_pad_axis2", cplx, 17, axis=2, n=7)
    dft_case("dft17_axis_neg2", real, 17, axis=-2)
    dft_case("dft17_double_inverse", r.standard_normal((3, 9, 2)), 17, inverse=1)
    # STFT
    sig = r.standard_normal((2, 64, 1)).astype(np.float32)
    stft_case("stft_hann_window", sig, 8, window=np.hanning(16).astype(np.float32))
    stft_case("stft_frame_length_only", sig, 10, flen=12)
    stft_case("stft_two_sided", sig, 16, window=np.hamming(16).astype(np.float32), flen=16,
              onesided=0)
    stft_case("stft_complex", r.standard_normal((1, 40, 2)).astype(np.float32), 7,
              window=np.hanning(10).astype(np.float32), onesided=0)
    stft_case("stft_double", r.standard_normal((1, 30, 1)), 5, flen=11)
    stft_case("stft_whole_signal", r.standard_normal((1, 9, 1)).astype(np.float32), 3)
    # windows
    for op in ("HannWindow", "HammingWindow", "BlackmanWindow"):
        low = op[:-6].lower()
        window_case(low + "_double_17", op, 17, dt=TensorProto.DOUBLE)
        window_case(low + "_symmetric_double_9", op, 9, periodic=0, dt=TensorProto.DOUBLE)
        window_case(low + "_float16", op, 10, dt=TensorProto.FLOAT16)
        window_case(low + "_int32_symmetric", op, 7, periodic=0, dt=TensorProto.INT32)
        window_case(low + "_uint8", op, 8, dt=TensorProto.UINT8)
        window_case(low + "_empty", op, 0)
    # MelWeightMatrix
    mel_case("melweightmatrix_double", 10, 128, 16000, 0.0, 8000.0, TensorProto.DOUBLE)
    mel_case("melweightmatrix_narrow", 6, 64, 8000, 300.0, 3000.0)
    mel_case("melweightmatrix_float16_hz", 8, 256, 22050, 20.0, 11000.0, TensorProto.FLOAT,
             hz_dtype=np.float16)


if __name__ == "__main__":
    main()
