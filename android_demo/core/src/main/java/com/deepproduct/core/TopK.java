package com.deepproduct.core;

import java.util.HashMap;
import java.util.Map;

/**
 * The k best (position, score) pairs seen so far: a bounded min-heap whose root is the worst
 * kept entry. Order: higher score first, ties by smaller position (docs/index-format.md).
 */
final class TopK {
    private final int k;
    private final int[] pos;
    private final double[] score;
    private int size;
    private final Map<Integer, Double> scores = new HashMap<Integer, Double>();

    TopK(int k) {
        this.k = k;
        this.pos = new int[Math.max(k, 0)];
        this.score = new double[Math.max(k, 0)];
    }

    /** true when (pa, sa) ranks before (pb, sb). */
    static boolean better(double sa, int pa, double sb, int pb) {
        return sa > sb || (sa == sb && pa < pb);
    }

    /** Whether {@link #offer} would keep (p, s): cheap enough to call for every row. */
    boolean wouldKeep(int p, double s) {
        return k > 0 && (size < k || better(s, p, score[0], pos[0]));
    }

    void offer(int p, double s) {
        if (k == 0) {
            return;
        }
        if (size < k) {
            pos[size] = p;
            score[size] = s;
            siftUp(size++);
        } else if (better(s, p, score[0], pos[0])) {
            pos[0] = p;
            score[0] = s;
            siftDown(0);
        }
    }

    private void siftUp(int i) {
        while (i > 0) {
            int parent = (i - 1) / 2;
            // Min-heap on rank: the parent must be the worse one.
            if (better(score[parent], pos[parent], score[i], pos[i])) {
                swap(i, parent);
                i = parent;
            } else {
                return;
            }
        }
    }

    private void siftDown(int i) {
        while (true) {
            int l = 2 * i + 1;
            int r = l + 1;
            int worst = i;
            if (l < size && better(score[worst], pos[worst], score[l], pos[l])) {
                worst = l;
            }
            if (r < size && better(score[worst], pos[worst], score[r], pos[r])) {
                worst = r;
            }
            if (worst == i) {
                return;
            }
            swap(i, worst);
            i = worst;
        }
    }

    private void swap(int a, int b) {
        int p = pos[a];
        pos[a] = pos[b];
        pos[b] = p;
        double s = score[a];
        score[a] = score[b];
        score[b] = s;
    }

    /** Kept positions, best first (the heap is consumed). */
    int[] sortedPositions() {
        int n = size;
        int[] out = new int[n];
        for (int i = n - 1; i >= 0; i--) {
            out[i] = pos[0];
            scores.put(pos[0], score[0]);
            size--;
            pos[0] = pos[size];
            score[0] = score[size];
            siftDown(0);
        }
        return out;
    }

    double score(int position) {
        return scores.get(position);
    }
}
