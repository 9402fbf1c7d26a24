package com.deepproduct.core;

import java.util.Map;

/** One hit: the item's position in the index, its product id, cosine score and metadata object. */
public final class SearchResult {
    public final int position;
    public final String productId;
    public final double score;
    public final Map<String, Object> item;

    public SearchResult(int position, String productId, double score, Map<String, Object> item) {
        this.position = position;
        this.productId = productId;
        this.score = score;
        this.item = item;
    }

    /** The item's {@code title} metadata, or its product id when it has none. */
    public String title() {
        Object t = item.get("title");
        return t instanceof String ? (String) t : productId;
    }

    @Override
    public String toString() {
        return String.format("#%d %s %.4f", position, productId, score);
    }
}
