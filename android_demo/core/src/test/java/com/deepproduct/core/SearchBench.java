package com.deepproduct.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.util.Arrays;
import java.util.List;

/**
 * Search benchmark harness, run by {@code dp-bench search --cores}: one thread, one query at a
 * time, on an index file the SDK wrote. Prints one JSON object per line:
 * {@code {"file":..., "storage":..., "count":..., "k":..., "mode": "items"|"products", "runs":...,
 * "median_ms":..., "p90_ms":..., "min_ms":..., "positions": [top-k of query 0]}}.
 *
 * <p>Usage: {@code SearchBench INDEX.dpindex QUERIES.f32 K RUNS WARMUP}. The index is
 * memory-mapped (as the app maps its asset); queries are raw little-endian float32 rows.
 */
public final class SearchBench {
    private SearchBench() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: SearchBench INDEX.dpindex QUERIES.f32 K RUNS WARMUP");
            System.exit(2);
        }
        GalleryIndex index = map(new File(args[0]));
        float[][] queries = readQueries(new File(args[1]), index.dim());
        int k = Integer.parseInt(args[2]);
        int runs = Integer.parseInt(args[3]);
        int warmup = Integer.parseInt(args[4]);
        for (String mode : new String[] {"items", "products"}) {
            boolean products = mode.equals("products");
            // Let the JIT compile the scan before timing it: WARMUP calls and at least one second
            // (C2 compiles in the background; on a busy host a fixed count was not always enough).
            long warmStart = System.nanoTime();
            for (int i = 0; i < warmup || System.nanoTime() - warmStart < 1_000_000_000L; i++) {
                run(index, queries[i % queries.length], k, products);
            }
            double[] ms = new double[runs];
            for (int i = 0; i < runs; i++) {
                long t0 = System.nanoTime();
                run(index, queries[i % queries.length], k, products);
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(ms);
            List<SearchResult> first = run(index, queries[0], k, products);
            StringBuilder pos = new StringBuilder();
            for (SearchResult r : first) {
                pos.append(pos.length() == 0 ? "" : ",").append(r.position);
            }
            System.out.println(String.format(java.util.Locale.ROOT,
                    "{\"file\":\"%s\",\"storage\":\"%s\",\"count\":%d,\"k\":%d,\"mode\":\"%s\",\"runs\":%d,"
                            + "\"median_ms\":%.5f,\"p90_ms\":%.5f,\"min_ms\":%.5f,\"positions\":[%s]}",
                    new File(args[0]).getName(), index.storage(), index.size(), k, mode, runs,
                    ms[runs / 2], ms[Math.min(runs - 1, (int) (runs * 0.9))], ms[0], pos));
        }
    }

    private static List<SearchResult> run(GalleryIndex index, float[] q, int k, boolean products)
            throws IndexFileException.QueryDimension {
        return products ? index.searchProducts(q, k, null) : index.search(q, k);
    }

    private static GalleryIndex map(File file) throws IOException, IndexFileException {
        RandomAccessFile raf = new RandomAccessFile(file, "r");
        try {
            FileChannel ch = raf.getChannel();
            ByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
            return GalleryIndex.read(buf, file.getName(), false);
        } finally {
            raf.close();
        }
    }

    private static float[][] readQueries(File file, int dim) throws IOException {
        byte[] raw = new byte[(int) file.length()];
        FileInputStream in = new FileInputStream(file);
        try {
            int off = 0;
            while (off < raw.length) {
                int n = in.read(raw, off, raw.length - off);
                if (n < 0) {
                    throw new IOException(file + ": truncated");
                }
                off += n;
            }
        } finally {
            in.close();
        }
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        float[][] out = new float[raw.length / 4 / dim][dim];
        for (float[] row : out) {
            for (int d = 0; d < dim; d++) {
                row[d] = b.getFloat();
            }
        }
        return out;
    }
}
