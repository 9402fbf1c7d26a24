package com.deepproduct.core;

/** Error texts shared with the Python SDK (sdk_python/gallery_index.py), kept in one place. */
final class Errors {
    private Errors() {
    }

    /** {@code GalleryIndex.check_embedding_space} with the default model wording. */
    static String spaceMismatch(String indexSpace, String modelSpace) {
        return "built in embedding space '" + indexSpace + "' but the querying model produces '" + modelSpace
                + "'; rebuild the index with this model (dp-search build)";
    }

    /** {@code GalleryIndex.prepare_queries}. */
    static String queryDimension(int got, int dim) {
        return "query has dimension " + got + " but the index holds " + dim + "-dimensional embeddings (wrong model?)";
    }

    /** {@code normalize_rows(..., "query")} on a non-finite query. */
    static String nonFiniteQuery() {
        return "querys contain NaN or infinity";
    }

    /** {@code normalize_rows(..., "query")} on an all-zero query. */
    static String zeroQuery() {
        return "query 0 is all zeros; cannot normalise";
    }
}
