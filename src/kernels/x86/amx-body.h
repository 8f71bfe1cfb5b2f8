/* src/kernels/x86/amx-body.h -- the body of the avx512amx kernel (N > 1
 * tokens), included twice by x86/amx.c: once with the real tile
 * instructions and once with their C emulation (tests). Not a header for
 * anyone else. Before including, amx.c defines
 *
 *   AMX_NAME          the function's name
 *   AMX_TARGET        its target attribute
 *   TILE_LOADCONFIG(cfg), TILE_ZERO(t), TILE_LOADD(t, base, stride),
 *   TILE_STORED(t, base, stride), TILE_DPBSSD(dst, src1, src2),
 *   TILE_RELEASE()    the instructions (t, dst, src1, src2: literal tile
 *                     numbers 0-7)
 *
 * and undefines them after. Everything but those six is the same code in
 * both (amx.c's B-tile expansion and combination with the scales).
 *
 * Tokens in groups of up to AMX_NG, whose float row sums F stay on the
 * stack across the 512-column blocks (amx_combine) and go to acc once
 * (amx_store). Tiles (all configured 16 rows x 64 bytes by amx_cfg): 0-3 the int32 sums
 * C (16 tokens x 16 rows) of token tiles m, m+1 times row blocks b, b+1
 * (tile 2i + h); 4, 5 the int8 inputs A of token tiles m, m+1 (16 tokens x
 * 64 columns); 6, 7 the signs B of blocks b, b+1 (VNNI order, amx_expand_b).
 * Per 64-column step up to 4 TDPBSSD for 4 tile loads. */

/* blocks [b0, b1) of N > 1 tokens; Q: the prep (N_pad x in_pad int8) */
AMX_TARGET static void AMX_NAME(const KernMat *km, const int8_t *Q, const float *scale, int N, int b0, int b1, float *acc)
{
    const int in_pad = kern_in_pad(km), nk = in_pad / 64, nq = kern_nqblk(km);
    _Alignas(64) AmxCfg cfg;
    _Alignas(64) int8_t B[2][AMX_KQ][1024]; /* the signs of blocks b, b+1 for one 512-column block */
    _Alignas(64) int32_t C[4][256];
    _Alignas(64) float F[2][AMX_NG * 16];   /* the row sums of blocks b, b+1 for the group's tokens */
    amx_cfg(&cfg);
    TILE_LOADCONFIG(&cfg);
    for (int g0 = 0; g0 < N; g0 += AMX_NG) {
        const int ng = N - g0 < AMX_NG ? N - g0 : AMX_NG, mt = (ng + 15) / 16;
        for (int b = b0; b < b1; b += 2) {
            const int nb = b1 - b >= 2 ? 2 : 1;
            for (int jq = 0; jq < nq; jq++) {
                const int k0 = jq * AMX_KQ, kc = nk - k0 < AMX_KQ ? nk - k0 : AMX_KQ;
                for (int h = 0; h < nb; h++) amx_expand_b(km, b + h, k0, kc, B[h][0]);
                for (int m = 0; m < mt; m += 2) {
                    const int nm = mt - m >= 2 ? 2 : 1;
                    const int8_t *A0 = Q + (size_t)(g0 + 16 * m) * in_pad + (size_t)k0 * 64;
                    TILE_ZERO(0);
                    TILE_ZERO(1);
                    TILE_ZERO(2);
                    TILE_ZERO(3);
                    for (int k = 0; k < kc; k++) {
                        TILE_LOADD(4, A0 + (size_t)k * 64, in_pad);
                        TILE_LOADD(6, B[0][k], 64);
                        TILE_DPBSSD(0, 4, 6);
                        if (nb == 2) {
                            TILE_LOADD(7, B[1][k], 64);
                            TILE_DPBSSD(1, 4, 7);
                        }
                        if (nm == 2) {
                            TILE_LOADD(5, A0 + (size_t)16 * in_pad + (size_t)k * 64, in_pad);
                            TILE_DPBSSD(2, 5, 6);
                            if (nb == 2) TILE_DPBSSD(3, 5, 7);
                        }
                    }
                    TILE_STORED(0, C[0], 64);
                    if (nb == 2) TILE_STORED(1, C[1], 64);
                    if (nm == 2) {
                        TILE_STORED(2, C[2], 64);
                        if (nb == 2) TILE_STORED(3, C[3], 64);
                    }
                    for (int i = 0; i < nm; i++) {
                        const int t0 = 16 * (m + i), nt = ng - t0 < 16 ? ng - t0 : 16;
                        for (int h = 0; h < nb; h++) amx_combine(C[2 * i + h], scale, nq, g0 + t0, nt, jq, F[h] + 16 * t0);
                    }
                }
            }
            for (int h = 0; h < nb; h++) amx_store(km, F[h], g0, ng, b + h, acc);
        }
    }
    TILE_RELEASE();
}

/* the parameters are the includer's for this one instance */
#undef AMX_NAME
#undef AMX_TARGET
#undef TILE_LOADCONFIG
#undef TILE_ZERO
#undef TILE_LOADD
#undef TILE_STORED
#undef TILE_DPBSSD
#undef TILE_RELEASE
