package com.deepproduct.core;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.FloatBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CodingErrorAction;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

/**
 * A {@code .dpindex} gallery read from a {@link ByteBuffer} (e.g. a memory-mapped asset) or an
 * {@link InputStream}; docs/index-format.md is the specification and
 * {@code sdk_python/index_format.py} the reference reader this class mirrors.
 *
 * <p>The vector block is not copied: float32 rows are read through a little-endian
 * {@link FloatBuffer} view and int8 codes through a {@link ByteBuffer} view of the input.
 */
public final class GalleryIndex {
    private static final Charset UTF8 = Charset.forName("UTF-8");

    public final IndexHeader header;
    public final String source;
    /** Embedding-space id of the model that built the index ("" = unknown). */
    public final String embeddingSpaceId;
    /** int8 per-dimension scales, null for float32 storage. */
    final float[] scales;
    private final String[] productIds;
    private final List<Map<String, Object>> items;
    private final Map<String, Object> info;
    private final FloatBuffer floatVectors;
    private final ByteBuffer int8Vectors;

    private GalleryIndex(IndexHeader header, String source, String spaceId, float[] scales, String[] ids,
                         List<Map<String, Object>> items, Map<String, Object> info, FloatBuffer fv, ByteBuffer bv) {
        this.header = header;
        this.source = source;
        this.embeddingSpaceId = spaceId;
        this.scales = scales;
        this.productIds = ids;
        this.items = items;
        this.info = info;
        this.floatVectors = fv;
        this.int8Vectors = bv;
    }

    /** Reads the whole stream (an asset, a download) and parses it; the stream is not closed. */
    public static GalleryIndex read(InputStream in, String source) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] chunk = new byte[1 << 16];
        int n;
        while ((n = in.read(chunk)) > 0) {
            out.write(chunk, 0, n);
        }
        return read(ByteBuffer.wrap(out.toByteArray()), source, true);
    }

    /**
     * Parses the index occupying the buffer from its position to its limit.
     *
     * @param source a file or asset name for error messages, or null
     * @param verify recompute the whole-file CRC-32 (the SDK's default); false skips it for huge files
     */
    public static GalleryIndex read(ByteBuffer buffer, String source, boolean verify) throws IndexFileException {
        ByteBuffer buf = buffer.slice().order(ByteOrder.LITTLE_ENDIAN);
        IndexHeader h = IndexHeader.unpack(buf, source, buf.remaining());
        if (h.fileSize > Integer.MAX_VALUE) {
            throw new IndexFileException(source, "index of " + h.fileSize + " bytes is too large for one ByteBuffer");
        }
        if (verify) {
            verifyChecksum(buf, h, source);
        }
        String spaceId = utf8(section(buf, h, IndexHeader.SPACE_ID), source, "embedding-space id is not UTF-8");
        float[] scales = null;
        if ("int8".equals(h.storage)) {
            scales = new float[h.dim];
            section(buf, h, IndexHeader.SCALES).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(scales);
        }
        int count = (int) Math.min(h.count, Integer.MAX_VALUE);
        if (h.count > Integer.MAX_VALUE) {
            throw new IndexFileException(source, "index has more items than this reader supports");
        }
        long[] offsets = new long[count + 1];
        ByteBuffer offBuf = section(buf, h, IndexHeader.ID_OFFSETS).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i <= count; i++) {
            offsets[i] = offBuf.getInt(4 * i) & 0xffffffffL;
        }
        ByteBuffer idBytes = section(buf, h, IndexHeader.ID_BYTES);
        ByteBuffer vectors = section(buf, h, IndexHeader.VECTORS).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer metadata = section(buf, h, IndexHeader.METADATA);

        boolean consistent = offsets[0] == 0 && offsets[count] == idBytes.remaining();
        for (int i = 0; consistent && i < count; i++) {
            consistent = offsets[i + 1] >= offsets[i];
        }
        if (!consistent) {
            throw new IndexFileException(source, "ids table offsets are inconsistent with the id bytes");
        }
        if (scales != null) {
            for (float s : scales) {
                if (!(s > 0) || !(s <= 1)) {
                    throw new IndexFileException(source, "int8 scales must be finite, positive and at most 1");
                }
            }
        }
        String[] ids = new String[count];
        for (int i = 0; i < count; i++) {
            ByteBuffer one = idBytes.duplicate();
            one.position((int) offsets[i]);
            one.limit((int) offsets[i + 1]);
            ids[i] = utf8(one.slice(), source, "product id " + i + " is not UTF-8");
        }
        if (verify && "float32".equals(h.storage)) {
            FloatBuffer all = vectors.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
            for (int i = 0; i < all.limit(); i++) {
                float v = all.get(i);
                if (Float.isNaN(v) || Float.isInfinite(v)) {
                    throw new IndexFileException(source, "vector " + (i / h.dim) + " contains NaN or infinity");
                }
            }
            // Rows are stored unit length (docs/index-format.md): a longer row would score above 1.
            for (int r = 0; r < count; r++) {
                double sq = 0;
                for (int j = r * h.dim; j < (r + 1) * h.dim; j++) {
                    double v = all.get(j);
                    sq += v * v;
                }
                double norm = Math.sqrt(sq);
                if (Math.abs(norm - 1.0) > 1e-3) {
                    throw new IndexFileException(source, "vector " + r + " is not unit length (norm "
                            + String.format(java.util.Locale.ROOT, "%.6g", norm) + "); float32 rows are stored normalised");
                }
            }
        }
        Map<String, Object> doc = parseMetadata(metadata, count, source);
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> items = Collections.unmodifiableList((List<Map<String, Object>>) doc.get("items"));
        @SuppressWarnings("unchecked")
        Map<String, Object> info = doc.get("index") instanceof Map ? (Map<String, Object>) doc.get("index")
                : Collections.<String, Object>emptyMap();
        FloatBuffer fv = "float32".equals(h.storage) ? vectors.asFloatBuffer() : null;
        ByteBuffer bv = "int8".equals(h.storage) ? vectors : null;
        return new GalleryIndex(h, source, spaceId, scales, ids, items, info, fv, bv);
    }

    /** Whole-file CRC-32 over everything before the trailer, and the trailer's end magic. */
    static void verifyChecksum(ByteBuffer buf, IndexHeader h, String source) throws IndexFileException {
        int body = (int) (h.fileSize - IndexHeader.TRAILER_SIZE);
        CRC32 crc = new CRC32();
        ByteBuffer all = buf.duplicate();
        all.position(0);
        all.limit(body);
        if (all.hasArray()) {
            crc.update(all.array(), all.arrayOffset(), body);
        } else {
            byte[] chunk = new byte[1 << 16];
            while (all.hasRemaining()) {
                int n = Math.min(chunk.length, all.remaining());
                all.get(chunk, 0, n);
                crc.update(chunk, 0, n);
            }
        }
        long stored = buf.getInt(body) & 0xffffffffL;
        byte[] magic = new byte[4];
        for (int i = 0; i < 4; i++) {
            magic[i] = buf.get(body + 4 + i);
        }
        if (!java.util.Arrays.equals(magic, IndexHeader.TRAILER_MAGIC)) {
            throw new IndexFileException(source, "bad trailer magic " + PyRepr.bytes(magic) + " (expected "
                    + PyRepr.bytes(IndexHeader.TRAILER_MAGIC) + ")");
        }
        if (stored != crc.getValue()) {
            throw new IndexFileException.Checksum(source, String.format(
                    "checksum mismatch (stored CRC-32 %08x, computed %08x): the file is damaged; rebuild or re-copy it",
                    stored, crc.getValue()));
        }
    }

    private static ByteBuffer section(ByteBuffer buf, IndexHeader h, int which) {
        ByteBuffer s = buf.duplicate();
        if (h.sectionLength[which] == 0) {
            s.position(0);
            s.limit(0);
        } else {
            s.limit((int) (h.sectionOffset[which] + h.sectionLength[which]));
            s.position((int) h.sectionOffset[which]);
        }
        return s.slice();
    }

    private static String utf8(ByteBuffer b, String source, String problem) throws IndexFileException {
        try {
            CharBuffer chars = UTF8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(b);
            return chars.toString();
        } catch (CharacterCodingException e) {
            throw new IndexFileException(source, problem);
        }
    }

    private static Map<String, Object> parseMetadata(ByteBuffer raw, int count, String source) throws IndexFileException {
        Object doc;
        try {
            doc = Json.parse(utf8(raw, source, "metadata block is not valid UTF-8 JSON"));
        } catch (IllegalArgumentException e) {
            throw new IndexFileException(source, "metadata block is not valid UTF-8 JSON (" + e.getMessage() + ")");
        }
        if (!(doc instanceof Map) || !(((Map<?, ?>) doc).get("items") instanceof List)) {
            throw new IndexFileException(source, "metadata block must be a JSON object with an 'items' array");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) doc;
        List<?> items = (List<?>) map.get("items");
        if (items.size() != count) {
            throw new IndexFileException(source, "metadata has " + items.size() + " items but the header says " + count);
        }
        for (Object item : items) {
            if (!(item instanceof Map)) {
                throw new IndexFileException(source, "every metadata item must be a JSON object");
            }
        }
        return map;
    }

    public int dim() {
        return header.dim;
    }

    public int size() {
        return productIds.length;
    }

    public String storage() {
        return header.storage;
    }

    public String productId(int i) {
        return productIds[i];
    }

    /** Item i's metadata object (title, category, url, image, ...), unmodifiable view of the parsed JSON. */
    public Map<String, Object> item(int i) {
        return Collections.unmodifiableMap(items.get(i));
    }

    /** The metadata's free-form {@code index} provenance object. */
    public Map<String, Object> info() {
        return Collections.unmodifiableMap(info);
    }

    /**
     * Item i's vector as stored, dequantised for int8 storage ({@code code * scale[d]} in float32).
     */
    public float[] vector(int i) {
        float[] v = new float[header.dim];
        int base = i * header.dim;
        for (int d = 0; d < header.dim; d++) {
            v[d] = floatVectors != null ? floatVectors.get(base + d) : int8Vectors.get(base + d) * scales[d];
        }
        return v;
    }

    /**
     * Refuses to search with a model whose manifest names another embedding space: vectors from
     * different models are not comparable and would give confident nonsense. As in the SDK's
     * {@code check_embedding_space}, an empty id on either side (unknown model) skips the check.
     */
    public void requireEmbeddingSpace(String modelSpaceId) throws IndexFileException.EmbeddingSpaceMismatch {
        if (modelSpaceId != null && !modelSpaceId.isEmpty() && !embeddingSpaceId.isEmpty()
                && !embeddingSpaceId.equals(modelSpaceId)) {
            throw new IndexFileException.EmbeddingSpaceMismatch(source, Errors.spaceMismatch(embeddingSpaceId, modelSpaceId));
        }
    }

    /** Top-K over all items (see {@link #search(float[], int, Map)}). */
    public List<SearchResult> search(float[] query, int k) throws IndexFileException.QueryDimension {
        return search(query, k, null);
    }

    /**
     * The {@code k} best items for {@code query} by cosine score, best first; ties by smaller position.
     * Scores follow docs/index-format.md "Scoring": the query is re-normalised (float64 norm, float32
     * result), int8 scales are folded into it, sums accumulate in float64.
     *
     * @param filter metadata field -> value (or list of accepted values); null or empty for none
     * @throws IndexFileException.QueryDimension when the query's length is not the index's dimension
     * @throws IllegalArgumentException for k < 1 or a zero / non-finite query (the SDK's ValueError)
     */
    public List<SearchResult> search(float[] query, int k, Map<String, Object> filter)
            throws IndexFileException.QueryDimension {
        if (k < 1) {
            throw new IllegalArgumentException("k must be at least 1, got " + k);
        }
        float[] w = scoringQuery(query);
        int dim = header.dim;
        // At most every item can be returned: TopK and CoarseScan size their buffers by k, so an
        // unclamped k (say 100,000,000 on a 12-item index) would be an OutOfMemoryError.
        k = Math.min(k, productIds.length);
        TopK top = new TopK(k);
        float[] scratch = new float[dim];
        final Map<String, Object> f = filter != null && !filter.isEmpty() ? filter : null;
        if (useCoarseScan && productIds.length > 0) {
            // Two stages (CoarseScan): integer scan for candidates, then their float64 scores.
            CoarseScan.Eligible eligible = f == null ? null : new CoarseScan.Eligible() {
                @Override
                public boolean test(int row) {
                    return MetadataFilter.matches(items.get(row), f);
                }
            };
            for (int i : coarse().candidates(w, k, eligible)) {
                top.offer(i, score(w, i, dim, scratch));
            }
        } else {
            int n = productIds.length;
            for (int i = 0; i < n; i++) {
                if (f != null && !MetadataFilter.matches(items.get(i), f)) {
                    continue;
                }
                double s = score(w, i, dim, scratch);
                // Most rows lose to the current k-th best: skip the heap call for them.
                if (top.wouldKeep(i, s)) {
                    top.offer(i, s);
                }
            }
        }
        int[] order = top.sortedPositions();
        List<SearchResult> out = new ArrayList<SearchResult>(order.length);
        for (int pos : order) {
            out.add(new SearchResult(pos, productIds[pos], top.score(pos), item(pos)));
        }
        return out;
    }

    /**
     * The {@code k} best distinct products, each scored by its best image (the hit's position),
     * best first; ties by smaller position. Same result as the SDK's
     * {@code search(..., unique_products=True)}: products rank by their first item in the item
     * ranking, so the item search is deepened until k products appear (or every item was seen).
     */
    public List<SearchResult> searchProducts(float[] query, int k, Map<String, Object> filter)
            throws IndexFileException.QueryDimension {
        if (k < 1) {
            throw new IllegalArgumentException("k must be at least 1, got " + k);
        }
        k = Math.min(k, Math.max(productIds.length, 1));  // no more products than items; 4 * k cannot overflow
        int depth = Math.max(4 * k, 16);
        while (true) {
            List<SearchResult> hits = search(query, depth, filter);
            List<SearchResult> out = new ArrayList<SearchResult>(k);
            java.util.Set<String> seen = new java.util.HashSet<String>();
            for (SearchResult h : hits) {
                if (out.size() == k) {
                    break;
                }
                if (seen.add(h.productId)) {
                    out.add(h);
                }
            }
            if (out.size() == k || hits.size() < depth || depth >= productIds.length) {
                return out;
            }
            depth = (int) Math.min((long) depth * 4, productIds.length);
        }
    }

    /** false: the plain float64 scan of every row (kept as the reference the tests compare with). */
    boolean useCoarseScan = true;
    private volatile CoarseScan coarseScan;

    /** The coarse codes, built on first use (float32 storage: an int8 shadow, count x dim bytes). */
    private CoarseScan coarse() {
        CoarseScan c = coarseScan;
        if (c == null) {
            c = floatVectors != null ? CoarseScan.ofFloat32(floatVectors, productIds.length, header.dim)
                    : CoarseScan.ofInt8(int8Vectors, productIds.length, header.dim);
            coarseScan = c;
        }
        return c;
    }

    /**
     * One row's score in float64. The row is first copied into {@code scratch} as floats (exact for
     * both storages: a float32 stays itself, an int8 code becomes the same integer), so one loop
     * serves both; FloatBuffer and ByteBuffer share no unboxed {@code get(int)}, and a generic or
     * lambda version would box every element in the search's innermost loop.
     */
    private double score(float[] w, int row, int dim, float[] scratch) {
        int base = row * dim;
        if (floatVectors != null) {
            for (int d = 0; d < dim; d++) scratch[d] = floatVectors.get(base + d);
        } else {
            for (int d = 0; d < dim; d++) scratch[d] = int8Vectors.get(base + d);
        }
        return dot(w, scratch, dim);
    }

    /**
     * Eight independent sums let the CPU overlap the additions (one chain would wait on each add's
     * latency); the order is fixed, so equal rows score equally.
     */
    private static double dot(float[] w, float[] v, int dim) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        int d = 0;
        for (; d + 7 < dim; d += 8) {
            s0 += (double) w[d] * v[d];
            s1 += (double) w[d + 1] * v[d + 1];
            s2 += (double) w[d + 2] * v[d + 2];
            s3 += (double) w[d + 3] * v[d + 3];
            s4 += (double) w[d + 4] * v[d + 4];
            s5 += (double) w[d + 5] * v[d + 5];
            s6 += (double) w[d + 6] * v[d + 6];
            s7 += (double) w[d + 7] * v[d + 7];
        }
        for (; d < dim; d++) {
            s0 += (double) w[d] * v[d];
        }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    }

    /** qn = float32(q / ||q||) with the norm in float64; for int8, w = float32(qn * scale). */
    float[] scoringQuery(float[] q) throws IndexFileException.QueryDimension {
        if (q.length != header.dim) {
            throw new IndexFileException.QueryDimension(source, Errors.queryDimension(q.length, header.dim));
        }
        double ss = 0.0;
        for (float v : q) {
            if (Float.isNaN(v) || Float.isInfinite(v)) {
                throw new IllegalArgumentException(Errors.nonFiniteQuery());
            }
            ss += (double) v * (double) v;
        }
        double n = Math.sqrt(ss);
        if (n == 0) {
            throw new IllegalArgumentException(Errors.zeroQuery());
        }
        float[] w = new float[q.length];
        for (int d = 0; d < q.length; d++) {
            float qn = (float) (q[d] / n);
            w[d] = scales != null ? qn * scales[d] : qn;
        }
        return w;
    }
}
