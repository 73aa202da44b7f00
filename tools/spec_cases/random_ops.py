"""Opset-22 cases for the random operators (the ONNX 1.12 suite stops at 15
for Bernoulli and lacks the rest), limited to what the specification fixes
exactly whatever the generator: Bernoulli with probabilities 0 and 1,
RandomUniform(+Like) with low == high, RandomNormal(+Like) with scale 0,
Multinomial with a single class of finite log-probability, and Dropout-22
outside training (ratio 0, or training_mode false). Distribution checks live
in tests/test_ops_random.c.
    /usr/bin/python3 tools/spec_cases/random_ops.py
"""
import numpy as np
from onnx import TensorProto, helper

from common import write_case


def main():
    p = np.array([[0, 1, 1, 0], [1, 0, 0, 1]], dtype=np.float32)
    write_case("bernoulli22_p0_p1", helper.make_node("Bernoulli", ["p"], ["y"], seed=3.0),
               [("p", p)], [("y", p.copy())], 22)
    write_case("bernoulli22_bool", helper.make_node("Bernoulli", ["p"], ["y"], dtype=TensorProto.BOOL),
               [("p", p.astype(np.float64))], [("y", p.astype(bool))], 22)
    write_case("bernoulli22_int32_from_float16",
               helper.make_node("Bernoulli", ["p"], ["y"], dtype=TensorProto.INT32),
               [("p", p.astype(np.float16))], [("y", p.astype(np.int32))], 22)
    write_case("random_uniform22_low_eq_high",
               helper.make_node("RandomUniform", [], ["y"], low=2.5, high=2.5, shape=[3, 4],
                                dtype=TensorProto.DOUBLE),
               [], [("y", np.full((3, 4), 2.5))], 22)
    write_case("random_normal22_scale0_float16",
               helper.make_node("RandomNormal", [], ["y"], mean=-1.0, scale=0.0, shape=[2, 5],
                                dtype=TensorProto.FLOAT16),
               [], [("y", np.full((2, 5), -1.0, dtype=np.float16))], 22)
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    write_case("random_uniform_like22_degenerate",
               helper.make_node("RandomUniformLike", ["x"], ["y"], low=0.5, high=0.5,
                                dtype=TensorProto.FLOAT),
               [("x", x)], [("y", np.full((2, 3), 0.5, dtype=np.float32))], 22)
    write_case("random_normal_like22_scale0",
               helper.make_node("RandomNormalLike", ["x"], ["y"], mean=4.0, scale=0.0),
               [("x", x.astype(np.float64))], [("y", np.full((2, 3), 4.0))], 22)
    lp = np.full((3, 5), -np.inf, dtype=np.float32)
    lp[0, 2] = lp[1, 0] = lp[2, 4] = 0.7
    write_case("multinomial22_single_class",
               helper.make_node("Multinomial", ["x"], ["y"], sample_size=4, dtype=TensorProto.INT64),
               [("x", lp)], [("y", np.array([[2] * 4, [0] * 4, [4] * 4], dtype=np.int64))], 22)
    d = np.random.default_rng(22).standard_normal((3, 4)).astype(np.float32)
    write_case("dropout22_training_ratio0",
               helper.make_node("Dropout", ["x", "r", "t"], ["y", "m"], seed=1),
               [("x", d), ("r", np.array(0.0, dtype=np.float32)), ("t", np.array(True))],
               [("y", d), ("m", np.ones((3, 4), dtype=bool))], 22)
    write_case("dropout22_not_training",
               helper.make_node("Dropout", ["x", "r", "t"], ["y", "m"]),
               [("x", d.astype(np.float64)), ("r", np.array(0.5, dtype=np.float64)),
                ("t", np.array(False))],
               [("y", d.astype(np.float64)), ("m", np.ones((3, 4), dtype=bool))], 22)


if __name__ == "__main__":
    main()
