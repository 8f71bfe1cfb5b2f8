/* test_softmax.c -- every softmax variant (scalar reference, AVX2,
 * AVX-512) against a double-precision softmax and against each other, on
 * lengths around every vector width and on extreme inputs. */
#include <stdint.h>

#include "model/model.h"
#include "test.h"

int main(void)
{
    const char *names[8];
    void (*fns[8])(float *, int);
    int nv = model_softmax_variants(names, fns, 8);
    CHECK(nv >= 1 && strcmp(names[0], "ref") == 0, "reference first");
    printf("variants:");
    for (int v = 0; v < nv; v++) printf(" %s", names[v]);
    printf("\n");
    uint64_t rng = 7;
    float x[700], y[700];
    double want[700];
    for (int v = 0; v < nv; v++) {
        double worst = 0;
        for (int n = 1; n <= 600; n += (n < 40 ? 1 : 37)) {
            for (int rep = 0; rep < 3; rep++) {
                double scale = rep == 0 ? 1 : rep == 1 ? 30 : 200; /* 200: many underflow to 0 */
                for (int i = 0; i < n; i++) {
                    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                    x[i] = (float)(((rng >> 11) * (1.0 / 9007199254740992.0) * 2 - 1) * scale);
                }
                double max = x[0], sum = 0;
                for (int i = 1; i < n; i++) if (x[i] > max) max = x[i];
                for (int i = 0; i < n; i++) sum += exp((double)x[i] - max);
                for (int i = 0; i < n; i++) want[i] = exp((double)x[i] - max) / sum;
                memcpy(y, x, n * sizeof(float));
                fns[v](y, n);
                for (int i = 0; i < n; i++) {
                    double err = fabs(y[i] - want[i]) / (want[i] > 1e-30 ? want[i] : 1e-30);
                    if (want[i] < 1e-35) err = fabs(y[i]) > 1e-35 ? 1 : 0; /* below float range: 0 */
                    if (err > worst) worst = err;
                }
            }
        }
        /* float sums of up to 600 terms: rounding bound ~n·eps/2 = 3.6e-5; expect far less */
        CHECK(worst < 1e-5, "%s: max relative error %g", names[v], worst);
    }
    /* identical inputs give identical outputs across variants up to rounding of the sum */
    for (int i = 0; i < 300; i++) x[i] = (float)(i % 17) * 0.25f - 2.0f;
    memcpy(y, x, sizeof y);
    fns[0](y, 300);
    for (int v = 1; v < nv; v++) {
        float z[300];
        memcpy(z, x, sizeof z);
        fns[v](z, 300);
        double d = 0;
        for (int i = 0; i < 300; i++) if (fabs(z[i] - y[i]) > d) d = fabs(z[i] - y[i]);
        CHECK(d < 1e-7, "%s vs ref: %g", names[v], d);
    }
    /* length 1 is exactly 1 */
    x[0] = -1e30f;
    for (int v = 0; v < nv; v++) { y[0] = x[0]; fns[v](y, 1); CHECK(y[0] == 1.0f, "%s: n=1 gives %g", names[v], y[0]); }
    /* RoPE: every variant gives the reference's bits, for head sizes around
     * the vector width (whole and partial vectors of pairs) and several
     * heads, at positions whose angles are far from 0 */
    const char *rn[8];
    void (*rf[8])(float *, int, int, const float *, const float *);
    int nr = model_rope_variants(rn, rf, 8);
    CHECK(nr >= 1 && strcmp(rn[0], "ref") == 0, "rope: reference first");
    static const int hds[] = {2, 6, 8, 14, 16, 18, 30, 32, 64, 72, 128};
    int rope_cases = 0;
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
        const int hd = hds[hi], heads = 3, n = heads * hd;
        float cs[64], sn[64], v0[3 * 128], want_r[3 * 128], got[3 * 128];
        for (int p = 0; p < hd / 2; p++) { cs[p] = cosf(37.1f * (p + 1)); sn[p] = sinf(37.1f * (p + 1)); }
        for (int i = 0; i < n; i++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            v0[i] = (float)(((rng >> 11) * (1.0 / 9007199254740992.0) * 2 - 1) * 3);
        }
        memcpy(want_r, v0, n * sizeof(float));
        rf[0](want_r, n, hd, cs, sn);
        /* the reference is the rotation */
        for (int i = 0; i < n; i += 2) {
            int p = (i % hd) / 2;
            CHECK(fabs(want_r[i] - (v0[i] * cs[p] - v0[i + 1] * sn[p])) < 1e-5 &&
                      fabs(want_r[i + 1] - (v0[i] * sn[p] + v0[i + 1] * cs[p])) < 1e-5, "rope ref hd %d pair %d", hd, i / 2);
        }
        for (int v = 1; v < nr; v++) {
            memcpy(got, v0, n * sizeof(float));
            rf[v](got, n, hd, cs, sn);
            CHECK(!memcmp(got, want_r, n * sizeof(float)), "rope %s hd %d: not the reference's bits", rn[v], hd);
            rope_cases++;
        }
    }
    printf("rope variants: %d, %d cases\n", nr, rope_cases);
    return test_done("test_softmax");
}
