"""String operators: StringConcat, StringSplit and RegexFullMatch (opset 20,
newer than the ONNX 1.12 suite; the cases mirror the newer backend suite's
and add edge cases), and StringNormalizer / TfIdfVectorizer beyond the 1.12
cases (non-ASCII case mapping, IDF and TFIDF modes with weights, int32 and
string pools, skips). Expected values come from Python's own str methods
and re.fullmatch, per the operator text:
    /usr/bin/python3 tools/spec_cases/strings.py
"""
import re

import numpy as np
from onnx import helper

from common import write_case


def S(*xs, shape=None):
    a = np.array(list(xs), dtype=object)
    return a.reshape(shape) if shape else a


def concat_cases():
    x, y = S("abc", "def", "", "ü"), S("x", "", "yz", "β")
    write_case("string_concat_basic", helper.make_node("StringConcat", ["x", "y"], ["z"]),
               [("x", x), ("y", y)], [("z", S(*[a + b for a, b in zip(x, y)]))], 20)
    a, b = S("a", "b", shape=(2, 1)), S("1", "2", "3", shape=(1, 3))
    z = np.array([[p + q for q in b[0]] for p in a[:, 0]], dtype=object)
    write_case("string_concat_broadcast", helper.make_node("StringConcat", ["x", "y"], ["z"]),
               [("x", a), ("y", b)], [("z", z)], 20)
    write_case("string_concat_empty_tensor", helper.make_node("StringConcat", ["x", "y"], ["z"]),
               [("x", S(shape=(0,))), ("y", S("q"))], [("z", S(shape=(0,)))], 20)


def split_py(s, delim, maxsplit):
    return s.split(delim if delim else None, -1 if maxsplit is None else maxsplit)


def split_case(name, x, delim=None, maxsplit=None):
    attrs = {}
    if delim is not None:
        attrs["delimiter"] = delim
    if maxsplit is not None:
        attrs["maxsplit"] = maxsplit
    parts = [split_py(s, delim, maxsplit) for s in x.ravel()]
    most = max([len(p) for p in parts] + [0])
    y = np.array([p + [""] * (most - len(p)) for p in parts], dtype=object).reshape(x.shape + (most,))
    z = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
    write_case(name, helper.make_node("StringSplit", ["x"], ["y", "z"], **attrs),
               [("x", x)], [("y", y), ("z", z)], 20)


def split_cases():
    split_case("string_split_basic", S("hello world", "hello", "a b c d"), " ")
    split_case("string_split_maxsplit", S("1,2,3,4", "a,b", "", "x"), ",", 2)
    split_case("string_split_consecutive_delimiters", S("a,,b", ",,,", "c"), ",")
    split_case("string_split_no_delimiter", S("  hello   world ", "", "one", "\ta\nb"))
    split_case("string_split_no_delimiter_maxsplit", S("  a  b  c  ", "x y"), None, 1)
    split_case("string_split_multichar_delimiter", S("a<>b<>c", "<><>", "ab"), "<>")
    split_case("string_split_2d", S("a b", "c", "d e f", "", shape=(2, 2)), " ")


def regex_case(name, x, pattern):
    y = np.array([re.fullmatch(pattern, s) is not None for s in x.ravel()], dtype=bool).reshape(x.shape)
    write_case(name, helper.make_node("RegexFullMatch", ["x"], ["y"], pattern=pattern),
               [("x", x)], [("y", y)], 20)


def regex_cases():
    regex_case("regex_full_match_basic", S("www.google.com", "www.facebook.com", "www.bbc.co.uk"),
               r"www\.[\w.-]+\.\bcom\b")
    regex_case("regex_full_match_email_domain",
               S("account@gmail.com", "account@hotmail.com", "not email", "account2@yahoo.com",
                 shape=(2, 2)), r"(\W|^)[\w.\-]{0,25}@(yahoo|gmail)\.com(\W|$)")
    regex_case("regex_full_match_empty", S(shape=(2, 0)), r"(\W|^)[\w.\-]{0,25}@(yahoo|gmail)\.com(\W|$)")
    regex_case("regex_full_match_digits_lazy", S("123", "12a", "", "0042"), r"\d+?")
    regex_case("regex_full_match_noncapturing_alternation", S("cat", "dog", "catdog", "bird"),
               r"(?:cat|dog)")
    regex_case("regex_full_match_icase", S("Hello", "HELLO", "help"), r"(?i)hel+o")
    regex_case("regex_full_match_utf8_dot", S("añb", "ab", "a€b", "aééb"), r"a.b")
    regex_case("regex_full_match_partial_is_not_full", S("abc", "xabcx"), r"abc")


def strnorm_case(name, x, action="NONE", sensitive=0, stop=None):
    attrs = {"case_change_action": action, "is_case_sensitive": sensitive}
    if stop:
        attrs["stopwords"] = stop
    flat = list(x.ravel())
    if sensitive:
        kept = [s for s in flat if s not in (stop or [])]
    else:
        low = [w.lower() for w in (stop or [])]
        kept = [s for s in flat if s.lower() not in low]
    kept = [s.lower() if action == "LOWER" else s.upper() if action == "UPPER" else s for s in kept]
    if not kept:
        kept = [""]
    y = np.array(kept, dtype=object).reshape((1, len(kept)) if x.ndim == 2 else (len(kept),))
    write_case(name, helper.make_node("StringNormalizer", ["x"], ["y"], **attrs),
               [("x", x)], [("y", y)], 10)


def tfidf_case(name, x, mode, min_n, max_n, skip, counts, indexes, pool, weights=None):
    attrs = dict(mode=mode, min_gram_length=min_n, max_gram_length=max_n, max_skip_count=skip,
                 ngram_counts=counts, ngram_indexes=indexes)
    if isinstance(pool[0], str):
        attrs["pool_strings"] = pool
    else:
        attrs["pool_int64s"] = pool
    if weights is not None:
        attrs["weights"] = weights
    # the pool's n-grams, numbered over every length
    grams, k = {}, 0
    for i, start in enumerate(counts):
        n = i + 1
        end = counts[i + 1] if i + 1 < len(counts) else len(pool)
        for off in range(start, end, n):
            if min_n <= n <= max_n:
                grams[tuple(pool[off:off + n])] = indexes[k]
            k += 1
    out = max(indexes) + 1
    rows = x if x.ndim == 2 else x[np.newaxis]
    y = np.zeros((rows.shape[0], out), dtype=np.float32)
    for r, row in enumerate(rows):
        row = [v if isinstance(v, str) else int(v) for v in row]
        for d in range(1, skip + 2):
            lo = min_n if d == 1 else max(min_n, 2)
            for s in range(len(row)):
                for n in range(lo, max_n + 1):
                    if s + (n - 1) * d >= len(row):
                        break
                    g = tuple(row[s + j * d] for j in range(n))
                    if g in grams:
                        y[r, grams[g]] += 1
    w = np.array(weights, dtype=np.float32) if weights is not None else np.ones(out, dtype=np.float32)
    if mode == "IDF":
        y = np.where(y > 0, w[:out], 0).astype(np.float32)
    elif mode == "TFIDF":
        y = (y * w[:out]).astype(np.float32)
    if x.ndim == 1:
        y = y[0]
    write_case(name, helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attrs),
               [("x", x)], [("y", y)], 9)


def main():
    concat_cases()
    split_cases()
    regex_cases()
    # Python upper() uses full case mapping ("ß" -> "SS"); onnx-run the simple
    # one (towupper: "ß" stays), which the operator text leaves open
    strnorm_case("strnorm_unicode_upper", S("über", "éclair", "Ωmega", "ok"), "UPPER")
    strnorm_case("strnorm_unicode_lower_insensitive_stop", S("ÉCOLE", "Été", "été", "x", shape=(1, 4)),
                 "LOWER", 0, ["été"])
    strnorm_case("strnorm_all_stopped_1d", S("a", "A"), "NONE", 0, ["a"])
    ints = np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]], dtype=np.int32)
    pool = [2, 3, 5, 4, 5, 6, 7, 8, 6, 7]
    counts, idx = [0, 4], [0, 1, 2, 3, 4, 5, 6]
    tfidf_case("tfidf_int32_idf_weights", ints, "IDF", 1, 2, 2, counts, idx, pool,
               [0.5, 1.5, 2.0, 3.0, 0.25, 1.0, 4.0])
    tfidf_case("tfidf_int32_tfidf_weights", ints, "TFIDF", 1, 2, 2, counts, idx, pool,
               [0.5, 1.5, 2.0, 3.0, 0.25, 1.0, 4.0])
    tfidf_case("tfidf_int64_tfidf_no_weights", ints[0].astype(np.int64), "TFIDF", 1, 2, 0, counts, idx, pool)
    tfidf_case("tfidf_int64_idf_no_weights", ints.astype(np.int64), "IDF", 2, 2, 3, counts, idx, pool)
    words = S("the", "cat", "sat", "on", "the", "mat", "the", "cat", shape=(2, 4))
    tfidf_case("tfidf_strings_uni_bigrams", words, "TF", 1, 2, 1, [0, 3],
               [0, 1, 2, 3, 4], ["the", "cat", "mat", "the", "cat", "sat", "on"])
    tfidf_case("tfidf_strings_trigram_skip", S("a", "x", "b", "y", "c", "a", "b", "c"), "TF", 3, 3, 1,
               [0, 0, 0], [0, 1], ["a", "b", "c", "b", "c", "a"])


if __name__ == "__main__":
    main()
