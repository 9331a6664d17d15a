/* entropy.c — TensorRT's KL-divergence calibration ("8-bit Inference with TensorRT",
 * Migacz 2017), on a histogram of |x| over [0, hist_max].
 *
 * For each candidate i in [nq, nbins] (nq = 2^(bits-1) quantized levels):
 *   P = hist[0..i), with the outliers sum(hist[i..nbins)) added to P[i-1];
 *   Q = hist[0..i) merged into nq bins of m = i / nq source bins (the last takes the
 *       remainder), each merged count spread evenly over the source bins where P != 0;
 *   KL(P/|P| || Q/|Q|); the threshold is the upper edge of bin i - 1 of the i minimising it.
 * KL is +inf when Q = 0 where P > 0 (a candidate never chosen). No smoothing is applied.
 *
 * Evaluated in O(nq) per candidate instead of O(i) with prefix sums, using
 *   sum_k P_k ln P_k / Q_k = (1/Sp) [sum p ln p - sum_j Pj ln(qj / zj)] - ln Sp + ln Sq
 * where Pj is the P mass of merged bin j, qj its Q mass (= hist mass), zj its count of
 * bins with P != 0, Sp = sum P = total count, Sq = sum Q = sum hist[0..i). */
#include "qlab-quant.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

static double xlogx(double v)
{
    return v > 0.0 ? v * log(v) : 0.0;
}

int qlab_entropy_threshold(const uint64_t *hist, int nbins, double hist_max, int bits,
                           double *threshold)
{
    int32_t qmin, qmax;
    if (!hist || nbins <= 0 || !(hist_max > 0.0) || !threshold ||
        qlab_qrange(bits, &qmin, &qmax) < 0)
        return -EINVAL;
    const int nq = 1 << (bits - 1);
    if (nq >= nbins) {
        *threshold = hist_max;
        return 0;
    }
    double *H = malloc(((size_t)nbins + 1) * sizeof(double));   /* prefix count */
    double *L = malloc(((size_t)nbins + 1) * sizeof(double));   /* prefix h ln h */
    int *Z = malloc(((size_t)nbins + 1) * sizeof(int));         /* prefix nonzero bins */
    if (!H || !L || !Z) {
        free(H);
        free(L);
        free(Z);
        return -ENOMEM;
    }
    H[0] = L[0] = 0.0;
    Z[0] = 0;
    for (int k = 0; k < nbins; k++) {
        H[k + 1] = H[k] + (double)hist[k];
        L[k + 1] = L[k] + xlogx((double)hist[k]);
        Z[k + 1] = Z[k] + (hist[k] != 0);
    }
    const double Sp = H[nbins];
    int best_i = nbins;
    double best = INFINITY;
    if (Sp > 0.0) {
        for (int i = nq; i <= nbins; i++) {
            const int m = i / nq;
            const double outl = Sp - H[i];
            const double plast = (double)hist[i - 1] + outl;
            const double Sq = H[i];
            double sum_plnp = L[i - 1] + xlogx(plast);
            double cross = 0.0;
            int inf = 0;
            for (int j = 0; j < nq; j++) {
                int s = j * m, e = j == nq - 1 ? i : s + m;
                double qj = H[e] - H[s];
                int zj = Z[e] - Z[s];
                double Pj = qj;
                if (j == nq - 1) {
                    /* P's last bin carries the outliers and counts as nonzero if they do. */
                    Pj += outl;
                    zj += (hist[i - 1] == 0 && plast > 0.0);
                }
                if (Pj <= 0.0)
                    continue;
                if (qj <= 0.0) {
                    inf = 1;
                    break;
                }
                cross += Pj * log(qj / zj);
            }
            if (inf || Sq <= 0.0)
                continue;
            double kl = (sum_plnp - cross) / Sp - log(Sp) + log(Sq);
            if (kl < best) {
                best = kl;
                best_i = i;
            }
        }
    }
    free(H);
    free(L);
    free(Z);
    *threshold = hist_max * (double)best_i / (double)nbins;
    return 0;
}
