/* nnlemma._native: the compiled hot loops of the float32 kernel and of the bound passes.

   Every function takes C-contiguous buffers (numpy arrays) plus their sizes, writes into output
   buffers the caller allocated (zero-filled where a loop accumulates), and releases the GIL while
   it runs. The Python wrappers live in nnlemma/kernels/fast.py, nnlemma/bounds/fused.py and
   nnlemma/bounds/fold_f32.py; the numpy versions next to them define what these loops compute.

   Float semantics (why the float32 folds give exactly the kernel's bits):
   * FLT_EVAL_METHOD must be 0: each float expression is evaluated in its own type, so a float32
     product or sum is one IEEE binary32 operation rounded to nearest even (checked below; x87
     builds, which evaluate in extended precision, refuse to compile and the numpy fallback runs).
   * setup.py compiles with -ffp-contract=off and without -ffast-math: no multiply-add is fused,
     nothing is reassociated, subnormals are kept.
   * Loops only vectorise across independent outputs; each output sees its terms in index order.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "nnlemma._native needs FLT_EVAL_METHOD == 0 (no extended-precision intermediates)"
#endif

/* ---- buffer helpers ------------------------------------------------------------------------ */

typedef struct {
    Py_buffer view;
    int held;
} Buf;

static int get_buf(PyObject *obj, Buf *b, int writable, Py_ssize_t count, Py_ssize_t itemsize,
                   const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0) return -1;
    b->held = 1;
    if (b->view.len != count * itemsize) {
        PyErr_Format(PyExc_ValueError, "nnlemma._native: buffer %s has %zd bytes, expected %zd",
                     name, b->view.len, count * itemsize);
        return -1;
    }
    return 0;
}

static void release(Buf *bufs, int n) {
    for (int i = 0; i < n; i++)
        if (bufs[i].held) PyBuffer_Release(&bufs[i].view);
}

static uint32_t f32_bits(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* ---- matmul_fold(x2 f32[B,K], wt f32[K,N], out f32[B,N] zeroed, B, K, N) --------------------
   out[b,n] = fl(... fl(fl(+0 + fl(x[b,0] w[0,n])) + fl(x[b,1] w[1,n])) ...), k in index order. */

/* Function multiversioning: on x86-64 Linux the float32 folds are also compiled for AVX2 and the
   loader picks that clone on CPUs that have it. Wider vectors change nothing in the arithmetic:
   lanes are independent outputs, and the "avx2" target does not enable FMA (with
   -ffp-contract=off there would be no contraction either way). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MULTIVERSION
#endif

/* Rows in blocks of 4 so each w[k, n] load serves 4 outputs; per output the terms are still added
   in k order. */
MULTIVERSION static void matmul_loop(const float *restrict x, const float *restrict w, float *restrict out,
                                     Py_ssize_t B, Py_ssize_t K, Py_ssize_t N) {
    Py_ssize_t i = 0;
    for (; i + 4 <= B; i += 4) {
        float *restrict a0 = out + i * N, *restrict a1 = a0 + N, *restrict a2 = a1 + N, *restrict a3 = a2 + N;
        for (Py_ssize_t k = 0; k < K; k++) {
            const float x0 = x[i * K + k], x1 = x[(i + 1) * K + k], x2 = x[(i + 2) * K + k],
                        x3 = x[(i + 3) * K + k];
            const float *wk = w + k * N;
            for (Py_ssize_t n = 0; n < N; n++) {
                const float wn = wk[n];
                a0[n] = a0[n] + x0 * wn;
                a1[n] = a1[n] + x1 * wn;
                a2[n] = a2[n] + x2 * wn;
                a3[n] = a3[n] + x3 * wn;
            }
        }
    }
    for (; i < B; i++) {
        float *acc = out + i * N;
        for (Py_ssize_t k = 0; k < K; k++) {
            const float xk = x[i * K + k];
            const float *wk = w + k * N;
            for (Py_ssize_t n = 0; n < N; n++) acc[n] = acc[n] + xk * wk[n];
        }
    }
}

static PyObject *matmul_fold(PyObject *self, PyObject *args) {
    PyObject *ox, *ow, *oo;
    Py_ssize_t B, K, N;
    if (!PyArg_ParseTuple(args, "OOOnnn", &ox, &ow, &oo, &B, &K, &N)) return NULL;
    Buf b[3];
    memset(b, 0, sizeof b);
    if (get_buf(ox, &b[0], 0, B * K, 4, "x") || get_buf(ow, &b[1], 0, K * N, 4, "wt") ||
        get_buf(oo, &b[2], 1, B * N, 4, "out")) {
        release(b, 3);
        return NULL;
    }
    const float *x = b[0].view.buf, *w = b[1].view.buf;
    float *out = b[2].view.buf;
    Py_BEGIN_ALLOW_THREADS
    matmul_loop(x, w, out, B, K, N);
    Py_END_ALLOW_THREADS
    release(b, 3);
    Py_RETURN_NONE;
}

/* ---- conv_fold(xp f32[NB,C,Hp,Wp], w f32[CO,C,KH,KW], out f32[NB,CO,OH,OW] zeroed,
                  NB, C, Hp, Wp, CO, KH, KW, OH, OW, s0, s1, d0, d1)
   per (n, co, p, q): terms over (ci, i, j) in index order. */

static PyObject *conv_fold(PyObject *self, PyObject *args) {
    PyObject *ox, *ow, *oo;
    Py_ssize_t NB, C, Hp, Wp, CO, KH, KW, OH, OW, s0, s1, d0, d1;
    if (!PyArg_ParseTuple(args, "OOOnnnnnnnnnnnnn", &ox, &ow, &oo, &NB, &C, &Hp, &Wp, &CO, &KH, &KW,
                          &OH, &OW, &s0, &s1, &d0, &d1))
        return NULL;
    if ((OH > 0 && (OH - 1) * s0 + (KH - 1) * d0 >= Hp) || (OW > 0 && (OW - 1) * s1 + (KW - 1) * d1 >= Wp)) {
        PyErr_SetString(PyExc_ValueError, "nnlemma._native.conv_fold: window leaves the padded input");
        return NULL;
    }
    Buf b[3];
    memset(b, 0, sizeof b);
    if (get_buf(ox, &b[0], 0, NB * C * Hp * Wp, 4, "xp") || get_buf(ow, &b[1], 0, CO * C * KH * KW, 4, "w") ||
        get_buf(oo, &b[2], 1, NB * CO * OH * OW, 4, "out")) {
        release(b, 3);
        return NULL;
    }
    const float *xp = b[0].view.buf, *w = b[1].view.buf;
    float *out = b[2].view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t n = 0; n < NB; n++)
        for (Py_ssize_t co = 0; co < CO; co++) {
            float *acc = out + (n * CO + co) * OH * OW;
            for (Py_ssize_t ci = 0; ci < C; ci++) {
                const float *plane = xp + (n * C + ci) * Hp * Wp;
                for (Py_ssize_t i = 0; i < KH; i++)
                    for (Py_ssize_t j = 0; j < KW; j++) {
                        const float wv = w[((co * C + ci) * KH + i) * KW + j];
                        for (Py_ssize_t p = 0; p < OH; p++) {
                            const float *row = plane + (p * s0 + i * d0) * Wp + j * d1;
                            float *arow = acc + p * OW;
                            for (Py_ssize_t q = 0; q < OW; q++) {
                                const float t = row[q * s1] * wv;
                                arow[q] = arow[q] + t;
                            }
                        }
                    }
            }
        }
    Py_END_ALLOW_THREADS
    release(b, 3);
    Py_RETURN_NONE;
}

/* ---- fold_interval(xl, xh f32[B,K], wt f32[K,N], with_err, table f64[256],
                      lo, hi f32[B,N] zeroed, err f64[B,N] zeroed, B, K, N)
   The kernel's fold replayed on interval endpoints, and the error bound of fold_f32.py:
   err += h(P_k) + h(M_k), h read from the table by the binary32 exponent field. A NaN endpoint
   has exponent field 255, whose entry is +inf. */

static PyObject *fold_interval(PyObject *self, PyObject *args) {
    PyObject *oxl, *oxh, *ow, *ot, *olo, *ohi, *oerr;
    int with_err;
    Py_ssize_t B, K, N;
    if (!PyArg_ParseTuple(args, "OOOpOOOOnnn", &oxl, &oxh, &ow, &with_err, &ot, &olo, &ohi, &oerr, &B, &K, &N))
        return NULL;
    Buf b[7];
    memset(b, 0, sizeof b);
    if (get_buf(oxl, &b[0], 0, B * K, 4, "xl") || get_buf(oxh, &b[1], 0, B * K, 4, "xh") ||
        get_buf(ow, &b[2], 0, K * N, 4, "wt") || get_buf(ot, &b[3], 0, 256, 8, "table") ||
        get_buf(olo, &b[4], 1, B * N, 4, "lo") || get_buf(ohi, &b[5], 1, B * N, 4, "hi") ||
        get_buf(oerr, &b[6], 1, B * N, 8, "err")) {
        release(b, 7);
        return NULL;
    }
    const float *xl = b[0].view.buf, *xh = b[1].view.buf, *w = b[2].view.buf;
    const double *table = b[3].view.buf;
    float *lo = b[4].view.buf, *hi = b[5].view.buf;
    double *err = b[6].view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < B; i++) {
        float *li = lo + i * N, *hi_i = hi + i * N;
        double *ei = err + i * N;
        for (Py_ssize_t k = 0; k < K; k++) {
            const float a = xl[i * K + k], c = xh[i * K + k];
            const float *wk = w + k * N;
            for (Py_ssize_t n = 0; n < N; n++) {
                const float wn = wk[n];
                const float pa = a * wn, pc = c * wn;
                const float plo = wn >= 0 ? pa : pc, phi = wn >= 0 ? pc : pa;
                const float l = li[n] + plo, h = hi_i[n] + phi;
                li[n] = l;
                hi_i[n] = h;
                if (with_err) {
                    if (plo != 0 || phi != 0) {
                        uint32_t e1 = (f32_bits(plo) >> 23) & 255, e2 = (f32_bits(phi) >> 23) & 255;
                        ei[n] += table[e1 > e2 ? e1 : e2];
                    } else if (wn != 0 && !(a == 0 && c == 0)) {
                        ei[n] += table[0]; /* the exact product may be nonzero (underflow) */
                    }
                    if (l != 0 || h != 0) {
                        uint32_t e1 = (f32_bits(l) >> 23) & 255, e2 = (f32_bits(h) >> 23) & 255;
                        ei[n] += table[e1 > e2 ? e1 : e2];
                    }
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    release(b, 7);
    Py_RETURN_NONE;
}

/* ---- relax(lam f64[S,B,N], a_lo, b_lo, a_hi, b_hi, xm f64[B,N], tiny,
              new f64[S,B,N], bias, bias_abs, mag f64[S,B] zeroed, small u8[S,B] zeroed, S, B, N)
   Λ' = Λ⁺·a_lo + Λ⁻·a_hi; bias = Σ Λ⁺·b_lo + Λ⁻·b_hi; bias_abs = Σ |those terms|;
   mag = Σ |Λ'_n|·xm_n over nonzero Λ'_n; small = some 0 < |Λ_n| < tiny. Zero (or NaN) Λ_n
   contribute nothing, so 0·inf never appears. */

static PyObject *relax(PyObject *self, PyObject *args) {
    PyObject *o[12];
    double tiny;
    Py_ssize_t S, B, N;
    if (!PyArg_ParseTuple(args, "OOOOOOdOOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &tiny, &o[6],
                          &o[7], &o[8], &o[9], &o[10], &S, &B, &N))
        return NULL;
    Buf b[11];
    memset(b, 0, sizeof b);
    const char *names[11] = {"lam", "a_lo", "b_lo", "a_hi", "b_hi", "xm", "new", "bias", "bias_abs", "mag", "small"};
    for (int i = 0; i < 11; i++) {
        Py_ssize_t count = i == 0 || i == 6 ? S * B * N : (i < 6 ? B * N : S * B);
        if (get_buf(o[i], &b[i], i >= 6, count, i == 10 ? 1 : 8, names[i])) {
            release(b, 11);
            return NULL;
        }
    }
    const double *lam = b[0].view.buf, *a_lo = b[1].view.buf, *b_lo = b[2].view.buf, *a_hi = b[3].view.buf,
                 *b_hi = b[4].view.buf, *xm = b[5].view.buf;
    double *nw = b[6].view.buf, *bias = b[7].view.buf, *bias_abs = b[8].view.buf, *mag = b[9].view.buf;
    unsigned char *small = b[10].view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < S; s++)
        for (Py_ssize_t j = 0; j < B; j++) {
            const Py_ssize_t r = s * B + j;
            const double *lr = lam + r * N;
            double *nr = nw + r * N;
            const Py_ssize_t o2 = j * N;
            double tb = 0.0, ta = 0.0, tm = 0.0;
            int sm = 0;
            for (Py_ssize_t n = 0; n < N; n++) {
                const double v = lr[n];
                sm |= (v != 0.0) & (fabs(v) < tiny);
                if (v > 0.0) {
                    const double t = v * a_lo[o2 + n], c = v * b_lo[o2 + n];
                    nr[n] = t;
                    tb += c;
                    ta += fabs(c);
                    if (t != 0.0) tm += fabs(t) * xm[o2 + n];
                } else if (v < 0.0) {
                    const double t = v * a_hi[o2 + n], c = v * b_hi[o2 + n];
                    nr[n] = t;
                    tb += c;
                    ta += fabs(c);
                    if (t != 0.0) tm += fabs(t) * xm[o2 + n];
                } else {
                    nr[n] = 0.0;
                }
            }
            bias[r] = tb;
            bias_abs[r] = ta;
            mag[r] = tm;
            small[r] = (unsigned char)sm;
        }
    Py_END_ALLOW_THREADS
    release(b, 11);
    Py_RETURN_NONE;
}

/* ---- abs_dots(lam f64[S,B,N], w1, w2 f64[B,N], tiny, r1, r2 f64[S,B], small u8[S,B], S, B, N)
   r1 = Σ|Λ_n|·w1_n, r2 = Σ|Λ_n|·w2_n over nonzero Λ_n; small = some 0 < |Λ_n| < tiny. */

static PyObject *abs_dots(PyObject *self, PyObject *args) {
    PyObject *o[6];
    double tiny;
    Py_ssize_t S, B, N;
    if (!PyArg_ParseTuple(args, "OOOdOOOnnn", &o[0], &o[1], &o[2], &tiny, &o[3], &o[4], &o[5], &S, &B, &N))
        return NULL;
    Buf b[6];
    memset(b, 0, sizeof b);
    const char *names[6] = {"lam", "w1", "w2", "r1", "r2", "small"};
    for (int i = 0; i < 6; i++) {
        Py_ssize_t count = i == 0 ? S * B * N : (i < 3 ? B * N : S * B);
        if (get_buf(o[i], &b[i], i >= 3, count, i == 5 ? 1 : 8, names[i])) {
            release(b, 6);
            return NULL;
        }
    }
    const double *lam = b[0].view.buf, *w1 = b[1].view.buf, *w2 = b[2].view.buf;
    double *r1 = b[3].view.buf, *r2 = b[4].view.buf;
    unsigned char *small = b[5].view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < S; s++)
        for (Py_ssize_t j = 0; j < B; j++) {
            const Py_ssize_t r = s * B + j;
            const double *lr = lam + r * N;
            double t1 = 0.0, t2 = 0.0;
            int sm = 0;
            for (Py_ssize_t n = 0; n < N; n++) {
                const double a = fabs(lr[n]);
                if (a != 0.0) {
                    t1 += a * w1[j * N + n];
                    t2 += a * w2[j * N + n];
                    sm |= a < tiny;
                }
            }
            r1[r] = t1;
            r2[r] = t2;
            small[r] = (unsigned char)sm;
        }
    Py_END_ALLOW_THREADS
    release(b, 6);
    Py_RETURN_NONE;
}

/* ---- tiny_rows(lam f64[R,N], tiny, out u8[R] zeroed, R, N): some 0 < |Λ_n| < tiny per row. */

static PyObject *tiny_rows(PyObject *self, PyObject *args) {
    PyObject *ol, *oo;
    double tiny;
    Py_ssize_t R, N;
    if (!PyArg_ParseTuple(args, "OdOnn", &ol, &tiny, &oo, &R, &N)) return NULL;
    Buf b[2];
    memset(b, 0, sizeof b);
    if (get_buf(ol, &b[0], 0, R * N, 8, "lam") || get_buf(oo, &b[1], 1, R, 1, "out")) {
        release(b, 2);
        return NULL;
    }
    const double *lam = b[0].view.buf;
    unsigned char *out = b[1].view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < R; r++)
        for (Py_ssize_t n = 0; n < N; n++) {
            const double a = fabs(lam[r * N + n]);
            if (a != 0.0 && a < tiny) {
                out[r] = 1;
                break;
            }
        }
    Py_END_ALLOW_THREADS
    release(b, 2);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"matmul_fold", matmul_fold, METH_VARARGS, "float32 fixed-order fold x2 @ wt into out"},
    {"conv_fold", conv_fold, METH_VARARGS, "float32 fixed-order conv2d fold into out"},
    {"fold_interval", fold_interval, METH_VARARGS, "interval fold with its rounding-error bound"},
    {"relax", relax, METH_VARARGS, "CROWN relaxation substitution (float64)"},
    {"abs_dots", abs_dots, METH_VARARGS, "sums of |lam| times two weight arrays (float64)"},
    {"tiny_rows", tiny_rows, METH_VARARGS, "rows holding a nonzero coefficient below tiny"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "nnlemma._native",
                                    "Compiled hot loops of the float32 kernel and the bound passes.", -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
