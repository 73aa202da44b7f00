/*
 * test_cli_lowp.c - inputs of the 8-, 4- and 2-bit types from NumPy files:
 * NumPy has none of these types, so `run -i` takes their bit patterns as a
 * uint8 ('u1') or int8 ('i1') array, or the 'V1' raw bytes ml_dtypes arrays
 * are saved as, and gives them the type the model declares; a byte that is
 * no element of the type, or data of another type, is an error naming the
 * file. Outputs are written packed (-o) and summarized. Runs the CLI
 * (ONR_CLI) on spec cases from testdata/spec (ONR_SOURCE_DIR).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kutil.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/onr_cli_lowp_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* stdout + stderr of `onnx-run ARGS` (malloc'd); *rc its exit status. */
static char *cli(const char *args, int *rc)
{
    const char *exe = getenv("ONR_CLI");
    if (!exe || !getenv("ONR_SOURCE_DIR")) skip();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' %s 2>&1 </dev/null", exe, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) n += got;
    buf[n] = 0;
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return buf;
}

static void expect(const char *args, int code, const char *word)
{
    int rc;
    char *out = cli(args, &rc);
    if (rc != code) fail_msg("onnx-run %s: exit %d, expected %d:\n%.2000s", args, rc, code, out);
    if (word && !strstr(out, word))
        fail_msg("onnx-run %s: output lacks \"%s\":\n%.2000s", args, word, out);
    free(out);
}

static const char *path(const char *name)
{
    static char b[4][512];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static const char *spec(const char *rel)
{
    static char b[4][1024];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 1024, "%s/testdata/spec/%s", getenv("ONR_SOURCE_DIR"), rel);
    return p;
}

/* A version-1 .npy of n one-byte elements with descriptor descr, shape dims. */
static const char *npy(const char *name, const char *descr, int rank, const int64_t *dims,
                       const void *data, size_t n)
{
    char h[256], shape[64] = "";
    for (int i = 0; i < rank; i++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%lld,%s",
                 (long long)dims[i], i + 1 < rank ? " " : "");
    int len = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                       descr, shape);
    while ((10 + len + 1) % 64) h[len++] = ' ';
    h[len++] = '\n';
    const char *p = path(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xFF),
                             (unsigned char)(len >> 8)};
    assert_int_equal(fwrite(pre, 1, 10, f), 10);
    assert_int_equal(fwrite(h, 1, (size_t)len, f), (size_t)len);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return p;
}

/* The int4 nibbles of a spec case's input: the .pb holds them packed. */
static void int4_codes(unsigned char *codes)
{
    /* testdata/spec/transpose_21_int4_3x5: read the packed raw_data */
    FILE *f = fopen(spec("transpose_21_int4_3x5/test_data_set_0/input_0.pb"), "rb");
    assert_non_null(f);
    unsigned char b[256];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    /* raw_data (field 9, 8 bytes) is the last field the writer put there */
    assert_true(n > 8);
    const unsigned char *raw = b + n - 8;
    assert_int_equal(raw[-2], 0x4A);
    for (int i = 0; i < 15; i++) codes[i] = (raw[i / 2] >> (4 * (i % 2))) & 0xF;
}

static void test_int4_from_npy(void **state)
{
    (void)state;
    if (!getenv("ONR_CLI") || !getenv("ONR_SOURCE_DIR")) skip();
    unsigned char nib[15];
    signed char sgn[15];
    int4_codes(nib);
    for (int i = 0; i < 15; i++) sgn[i] = (signed char)(nib[i] > 7 ? nib[i] - 16 : nib[i]);
    int64_t d[] = {3, 5};
    const char *model = spec("transpose_21_int4_3x5/model.onnx");
    const char *want = spec("transpose_21_int4_3x5/test_data_set_0/output_0.pb");
    const char *files[] = {npy("u1.npy", "|u1", 2, d, nib, 15), npy("i1.npy", "|i1", 2, d, sgn, 15),
                           npy("v1.npy", "|V1", 2, d, nib, 15)};
    for (int k = 0; k < 3; k++) {
        char args[4096], out[600], cmp[2048];
        snprintf(out, sizeof out, "%s/out%d", dir, k);
        snprintf(args, sizeof args, "run '%s' -i '%s' -o '%s'", model, files[k], out);
        expect(args, 0, NULL);
        /* the output is written packed, byte for byte the spec case's */
        snprintf(cmp, sizeof cmp, "cmp -s '%s/output_0.pb' '%s'", out, want);
        assert_int_equal(system(cmp), 0);
        snprintf(args, sizeof args, "run '%s' -i '%s'", model, files[k]);
        expect(args, 0, "y: int4 [5,3] =");
    }
    /* a byte that is no int4, data of another type */
    unsigned char bad[15];
    memcpy(bad, nib, 15);
    bad[7] = 0x35;
    char args[4096];
    snprintf(args, sizeof args, "run '%s' -i '%s'", model, npy("bad.npy", "|u1", 2, d, bad, 15));
    expect(args, 1, "element 7 is 0x35, which is no int4 bit pattern");
    bad[7] = 0xF7; /* high bits set but not the nibble's sign */
    snprintf(args, sizeof args, "run '%s' -i '%s'", model, npy("bad2.npy", "|u1", 2, d, bad, 15));
    expect(args, 1, "element 7 is 0xf7");
    float f[15] = {0};
    snprintf(args, sizeof args, "run '%s' -i '%s'", model, npy("f.npy", "<f4", 2, d, f, sizeof f));
    expect(args, 1, "float32 data for an input of type int4");
}

static void test_float8_from_npy(void **state)
{
    (void)state;
    if (!getenv("ONR_CLI") || !getenv("ONR_SOURCE_DIR")) skip();
    /* Identity of float8e4m3fn [5]: every byte is an element */
    unsigned char v[5] = {0x00, 0x7F, 0x80, 0xFF, 0x38};
    int64_t d[] = {5};
    char args[4096], out[600], cmd[2048];
    snprintf(out, sizeof out, "%s/f8", dir);
    snprintf(args, sizeof args, "run '%s' -i '%s' -o '%s'",
             spec("identity_19_float8e4m3fn/model.onnx"), npy("f8.npy", "|V1", 1, d, v, 5), out);
    expect(args, 0, NULL);
    /* the bytes come back unchanged at the end of the written TensorProto */
    snprintf(cmd, sizeof cmd, "tail -c 5 '%s/output_0.pb' | od -An -tx1 | tr -d ' \\n'", out);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char got[64] = "";
    assert_non_null(fgets(got, sizeof got, p));
    pclose(p);
    assert_string_equal(got, "007f80ff38");
    snprintf(args, sizeof args, "run '%s' -i '%s'", spec("identity_19_float8e4m3fn/model.onnx"),
             npy("f8b.npy", "|u1", 1, d, v, 5));
    expect(args, 0, "y: float8e4m3fn [5] = bits 0x00 0x7f 0x80 0xff 0x38");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int4_from_npy),
        cmocka_unit_test(test_float8_from_npy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
