package com.deepproduct.core;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;

/**
 * The exact two-stage scan of the Python SDK (docs/sdk.md "Speed"), for one query:
 *
 * <ol>
 *   <li>every row as int8 codes (the index's own codes, or an int8 shadow of a float32 index,
 *       built once) against the query rounded to integers, with exact {@code int} sums: over
 *       {@code int} columns for unfiltered searches (built on first use, 4x the int8 codes'
 *       memory, capped by {@link #columnBudgetBytes}: the loop JDK 17's C2 vectorises), over
 *       {@code byte} rows when filtered or above the cap; a proven bound
 *       B on |coarse - true score| keeps every row within 2B of the running k-th best;</li>
 *   <li>those candidates re-scored with the float64 reference sums and ranked by (score desc,
 *       position asc), so the result equals the plain float64 scan's.</li>
 * </ol>
 */
final class CoarseScan {
    private static final int QMAX = 127;
    private static final int BLOCK_ROWS = 4096;
    private static final int COLUMN_ROWS = 1024;
    private static final double EPS32 = Math.ulp(1.0f);
    /**
     * The most heap the int columns may take (N x D x 4 bytes); a larger gallery scans its byte
     * rows instead (2-3x slower on JDK 17, no extra memory). 64 MiB by default, i.e. 128-d
     * galleries up to 131,072 rows; set {@code -Ddeepproduct.columnBudgetBytes=0} (or this
     * field) to never build them, e.g. on a phone short of heap.
     */
    static volatile long columnBudgetBytes = Long.getLong("deepproduct.columnBudgetBytes", 64L << 20);

    private final int dim;
    private final int count;
    private final ByteBuffer int8Rows;  // int8 storage: the mapped codes
    private final byte[] shadow;        // float32 storage: the int8 shadow (count x dim)
    private final double[] grid;        // stored ~= grid * codes (all ones for int8 storage)
    private final double codeNorm;
    private final double residualNorm;
    private final double rowNorm;
    /** Unfiltered stage 1: the codes as int columns, built on the first unfiltered query. */
    private volatile int[][] columns;

    private CoarseScan(int dim, int count, ByteBuffer int8Rows, byte[] shadow, double[] grid, double codeNorm,
                       double residualNorm, double rowNorm) {
        this.dim = dim;
        this.count = count;
        this.int8Rows = int8Rows;
        this.shadow = shadow;
        this.grid = grid;
        this.codeNorm = codeNorm;
        this.residualNorm = residualNorm;
        this.rowNorm = rowNorm;
    }

    static CoarseScan ofInt8(ByteBuffer codes, int count, int dim) {
        long peak = 0;
        for (int i = 0; i < count; i++) {
            long ss = 0;
            for (int d = 0; d < dim; d++) {
                int c = codes.get(i * dim + d);
                ss += c * c;
            }
            peak = Math.max(peak, ss);
        }
        double[] grid = new double[dim];
        java.util.Arrays.fill(grid, 1.0);
        double norm = Math.sqrt((double) peak);
        return new CoarseScan(dim, count, codes, null, grid, norm, 0.0, norm);
    }

    static CoarseScan ofFloat32(FloatBuffer v, int count, int dim) {
        double[] peakAbs = new double[dim];
        for (int i = 0; i < count * dim; i++) {
            peakAbs[i % dim] = Math.max(peakAbs[i % dim], Math.abs((double) v.get(i)));
        }
        double[] grid = new double[dim];
        for (int d = 0; d < dim; d++) {
            grid[d] = (peakAbs[d] > 0 ? peakAbs[d] : 1.0) / QMAX;
        }
        byte[] codes = new byte[count * dim];
        double codePeak = 0;
        double residualPeak = 0;
        double rowPeak = 0;
        for (int i = 0; i < count; i++) {
            double cs = 0;
            double rs = 0;
            double xs = 0;
            for (int d = 0; d < dim; d++) {
                double x = v.get(i * dim + d);
                double c = Math.max(-QMAX, Math.min(QMAX, Math.rint(x / grid[d])));
                codes[i * dim + d] = (byte) c;
                double r = x - c * grid[d];
                cs += c * c;
                rs += r * r;
                xs += x * x;
            }
            codePeak = Math.max(codePeak, cs);
            residualPeak = Math.max(residualPeak, rs);
            rowPeak = Math.max(rowPeak, xs);
        }
        return new CoarseScan(dim, count, null, codes, grid, Math.sqrt(codePeak), Math.sqrt(residualPeak),
                Math.sqrt(rowPeak));
    }

    /** Callback: is row i eligible (the metadata filter)? */
    interface Eligible {
        boolean test(int row);
    }

    /** Positions (ascending) of every row whose float64 score can reach the top k. */
    int[] candidates(float[] w, int k, Eligible eligible) {
        double[] u = new double[dim];
        double peak = 0;
        double wn = 0;
        for (int d = 0; d < dim; d++) {
            u[d] = (double) w[d] * grid[d];
            peak = Math.max(peak, Math.abs(u[d]));
            wn += (double) w[d] * (double) w[d];
        }
        double step = peak > 0 ? peak / QMAX : 1.0;
        int[] q = new int[dim];
        double err = 0;
        for (int d = 0; d < dim; d++) {
            q[d] = (int) Math.rint(u[d] / step);
            double e = u[d] - q[d] * step;
            err += e * e;
        }
        wn = Math.sqrt(wn);
        double gamma = dim * EPS32 / (1 - dim * EPS32);
        double bound = codeNorm * Math.sqrt(err) + residualNorm * wn + 2 * gamma * rowNorm * wn;
        double margin = 2 * bound * (1 + 1e-6) / step + 1e-6 * codeNorm * QMAX;

        Kept kept = new Kept(k, margin);
        if (eligible == null && (columns != null || (long) count * dim * 4 <= columnBudgetBytes)) {
            // Blocks of COLUMN_ROWS rows, one int[] per dimension: acc += column * q[d] is the one
            // loop shape JDK 17's C2 vectorises here (measured: int[] from index 0 ~0.07 ns per
            // multiply-add; byte/short widening or an offset into a shared array stay scalar at
            // 0.37-0.5 ns). Same integer sums as the byte loop below, so the same candidates.
            int[][] cols = columns();
            int[] acc = new int[Math.min(COLUMN_ROWS, Math.max(count, 1))];
            for (int start = 0, b = 0; start < count; start += COLUMN_ROWS, b++) {
                int rows = Math.min(COLUMN_ROWS, count - start);
                java.util.Arrays.fill(acc, 0);
                for (int d = 0; d < dim; d++) {
                    axpy(acc, cols[b * dim + d], q[d]);
                }
                for (int r = 0; r < rows; r++) {
                    kept.offer(start + r, acc[r]);
                }
            }
            return kept.positions();
        }
        byte[] block = shadow != null ? shadow : new byte[Math.min(BLOCK_ROWS, Math.max(count, 1)) * dim];
        for (int start = 0; start < count; start += BLOCK_ROWS) {
            int rows = Math.min(BLOCK_ROWS, count - start);
            int base0 = 0;
            if (shadow == null) {
                ByteBuffer dup = int8Rows.duplicate();
                dup.position(start * dim);
                dup.get(block, 0, rows * dim);
            } else {
                base0 = start * dim;
            }
            int r = 0;
            if (eligible == null) {
                // Four rows per pass: each query value is loaded once for four rows, and four
                // independent sums keep the multiplier busy (~15% faster than one row at a time).
                for (; r + 3 < rows; r += 4) {
                    int o0 = base0 + r * dim;
                    int o1 = o0 + dim;
                    int o2 = o1 + dim;
                    int o3 = o2 + dim;
                    int s0 = 0;
                    int s1 = 0;
                    int s2 = 0;
                    int s3 = 0;
                    for (int d = 0; d < dim; d++) {
                        int qd = q[d];
                        s0 += block[o0 + d] * qd;
                        s1 += block[o1 + d] * qd;
                        s2 += block[o2 + d] * qd;
                        s3 += block[o3 + d] * qd;
                    }
                    int i = start + r;
                    kept.offer(i, s0);
                    kept.offer(i + 1, s1);
                    kept.offer(i + 2, s2);
                    kept.offer(i + 3, s3);
                }
            }
            for (; r < rows; r++) {
                int i = start + r;
                if (eligible == null || eligible.test(i)) {
                    kept.offer(i, dot(block, base0 + r * dim, q));
                }
            }
        }
        return kept.positions();
    }

    /** acc[i] += col[i] * q for i < col.length (kept as its own small method: C2 compiles and vectorises it). */
    private static void axpy(int[] acc, int[] col, int q) {
        for (int i = 0; i < col.length; i++) {
            acc[i] += col[i] * q;
        }
    }

    /** The int columns of the unfiltered scan (N x D ints: 4x the int8 codes), built once. */
    private int[][] columns() {
        int[][] cols = columns;
        if (cols == null) {
            int blocks = (count + COLUMN_ROWS - 1) / COLUMN_ROWS;
            cols = new int[blocks * dim][];
            for (int b = 0; b < blocks; b++) {
                int start = b * COLUMN_ROWS;
                int rows = Math.min(COLUMN_ROWS, count - start);
                for (int d = 0; d < dim; d++) {
                    int[] col = new int[rows];
                    for (int r = 0; r < rows; r++) {
                        int at = (start + r) * dim + d;
                        col[r] = shadow != null ? shadow[at] : int8Rows.get(at);
                    }
                    cols[b * dim + d] = col;
                }
            }
            columns = cols;
        }
        return cols;
    }

    /** The rows kept so far: every row whose coarse score is at least (k-th best - margin). */
    private static final class Kept {
        private final IntTopK top;
        private final double margin;
        private int[] pos;
        private int[] sc;
        private int n;
        private long thr = Long.MIN_VALUE;

        Kept(int k, double margin) {
            this.top = new IntTopK(k);
            this.margin = margin;
            this.pos = new int[Math.max(64, 8 * k)];
            this.sc = new int[pos.length];
        }

        /** Rows arrive in increasing position. */
        void offer(int i, int s) {
            if (s < thr) {
                return;
            }
            if (top.offer(s)) {
                thr = (long) Math.ceil(top.kth() - margin);
            }
            if (n == pos.length) {  // compact with the current threshold, then grow if still full
                int m = 0;
                for (int j = 0; j < n; j++) {
                    if (sc[j] >= thr) {
                        pos[m] = pos[j];
                        sc[m++] = sc[j];
                    }
                }
                n = m;
                if (n > pos.length / 2) {
                    pos = java.util.Arrays.copyOf(pos, pos.length * 2);
                    sc = java.util.Arrays.copyOf(sc, sc.length * 2);
                }
            }
            pos[n] = i;
            sc[n++] = s;
        }

        /** Positions (ascending) that pass the final threshold. */
        int[] positions() {
            int m = 0;
            for (int j = 0; j < n; j++) {
                if (sc[j] >= thr) {
                    pos[m++] = pos[j];
                }
            }
            return java.util.Arrays.copyOf(pos, m);
        }
    }

    /** Exact integer dot product of one row's codes with the rounded query. */
    private int dot(byte[] a, int off, int[] q) {
        int s = 0;
        for (int d = 0; d < dim; d++) {
            s += a[off + d] * q[d];
        }
        return s;
    }

    /** The k largest ints seen (a min-heap); only the k-th value matters here. */
    private static final class IntTopK {
        private final int[] heap;
        private int size;

        IntTopK(int k) {
            heap = new int[k];
        }

        /** Offers s; true when the k-th best changed (only reported once k values are held). */
        boolean offer(int s) {
            if (size < heap.length) {
                heap[size] = s;
                int i = size++;
                while (i > 0 && heap[(i - 1) / 2] > heap[i]) {
                    int p = (i - 1) / 2;
                    int t = heap[p];
                    heap[p] = heap[i];
                    heap[i] = t;
                    i = p;
                }
                return size == heap.length;
            }
            if (s <= heap[0]) {
                return false;
            }
            heap[0] = s;
            int i = 0;
            while (true) {
                int l = 2 * i + 1;
                int r = l + 1;
                int min = i;
                if (l < size && heap[l] < heap[min]) {
                    min = l;
                }
                if (r < size && heap[r] < heap[min]) {
                    min = r;
                }
                if (min == i) {
                    return true;
                }
                int t = heap[min];
                heap[min] = heap[i];
                heap[i] = t;
                i = min;
            }
        }

        int kth() {
            return heap[0];
        }
    }
}
