package com.deepproduct.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32;

/**
 * The fixed 256-byte header of a {@code .dpindex} file (docs/index-format.md, "Header"):
 * magic, version, header size, flags, dim, storage, metric, vector alignment, count, file size,
 * then a table of six (u64 offset, u64 length) sections, and a CRC-32 of the first 252 bytes.
 * Decoding mirrors {@code unpack_header} / {@code _check_sections} of sdk_python/index_format.py,
 * check for check and in the same order, so a damaged file fails with the same error everywhere.
 */
public final class IndexHeader {
    public static final byte[] MAGIC = {'D', 'P', 'I', 'N', 'D', 'E', 'X', 0};
    public static final byte[] TRAILER_MAGIC = {'D', 'P', 'I', 'E'};
    public static final int FORMAT_VERSION = 1;
    public static final int HEADER_SIZE = 256;
    public static final int TRAILER_SIZE = 8;
    public static final int VECTOR_ALIGNMENT = 64;
    static final int SECTION_ALIGNMENT = 8;
    public static final String[] SECTIONS = {"space_id", "scales", "id_offsets", "id_bytes", "vectors", "metadata"};
    static final int SECTION_TABLE_OFFSET = 40;
    static final int HEADER_CRC_OFFSET = HEADER_SIZE - 4;

    public static final int SPACE_ID = 0;
    public static final int SCALES = 1;
    public static final int ID_OFFSETS = 2;
    public static final int ID_BYTES = 3;
    public static final int VECTORS = 4;
    public static final int METADATA = 5;

    public final int formatVersion;
    public final int flags;
    public final int dim;
    /** "float32" or "int8". */
    public final String storage;
    /** "cosine". */
    public final String metric;
    public final int vectorAlignment;
    public final long count;
    public final long fileSize;
    public final long[] sectionOffset = new long[SECTIONS.length];
    public final long[] sectionLength = new long[SECTIONS.length];

    private IndexHeader(int formatVersion, int flags, int dim, String storage, String metric, int vectorAlignment,
                        long count, long fileSize) {
        this.formatVersion = formatVersion;
        this.flags = flags;
        this.dim = dim;
        this.storage = storage;
        this.metric = metric;
        this.vectorAlignment = vectorAlignment;
        this.count = count;
        this.fileSize = fileSize;
    }

    public int itemSize() {
        return "int8".equals(storage) ? 1 : 4;
    }

    /**
     * Decodes and validates the header at the buffer's position.
     *
     * @param actualSize the whole file's size in bytes (checked against the header's), or -1
     */
    public static IndexHeader unpack(ByteBuffer buf, String source, long actualSize) throws IndexFileException {
        ByteBuffer raw = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int base = raw.position();
        int avail = raw.remaining();
        if (avail < 12) {
            throw new IndexFileException.Truncated(source, "only " + avail + " bytes; too short to be a gallery index");
        }
        byte[] magic = new byte[8];
        for (int i = 0; i < 8; i++) {
            magic[i] = raw.get(base + i);
        }
        if (!java.util.Arrays.equals(magic, MAGIC)) {
            throw new IndexFileException(source, "not a DeepProduct gallery index (magic " + PyRepr.bytes(magic)
                    + ", expected " + PyRepr.bytes(MAGIC) + ")");
        }
        int version = raw.getShort(base + 8) & 0xffff;
        int headerSize = raw.getShort(base + 10) & 0xffff;
        if (version > FORMAT_VERSION) {
            throw new IndexFileException.UnsupportedVersion(source, "index format version " + version
                    + " is newer than this reader supports (" + FORMAT_VERSION + "); "
                    + "upgrade deepproduct or rebuild the index with this version");
        }
        if (version < 1) {
            throw new IndexFileException(source, "invalid index format version " + version);
        }
        if (headerSize != HEADER_SIZE) {
            throw new IndexFileException(source, "header size " + headerSize + " is not " + HEADER_SIZE
                    + " as format v1 requires");
        }
        if (avail < HEADER_SIZE) {
            throw new IndexFileException.Truncated(source, "file ends inside the " + HEADER_SIZE + "-byte header ("
                    + avail + " bytes)");
        }
        CRC32 crc = new CRC32();
        for (int i = 0; i < HEADER_CRC_OFFSET; i++) {
            crc.update(raw.get(base + i));
        }
        long storedCrc = raw.getInt(base + HEADER_CRC_OFFSET) & 0xffffffffL;
        if (crc.getValue() != storedCrc) {
            throw new IndexFileException.Checksum(source, "header CRC-32 mismatch: the header is damaged");
        }
        int flags = raw.getInt(base + 12);
        long dim = raw.getInt(base + 16) & 0xffffffffL;
        int storageCode = raw.get(base + 20) & 0xff;
        int metricCode = raw.get(base + 21) & 0xff;
        int alignment = raw.getShort(base + 22) & 0xffff;
        long count = raw.getLong(base + 24);
        long fileSize = raw.getLong(base + 32);
        String storage;
        if (storageCode == 1) {
            storage = "float32";
        } else if (storageCode == 2) {
            storage = "int8";
        } else {
            throw new IndexFileException(source, "unknown storage code " + storageCode);
        }
        if (metricCode != 1) {
            throw new IndexFileException(source, "unknown metric code " + metricCode);
        }
        if (dim < 1) {
            throw new IndexFileException(source, "invalid embedding dimension " + dim);
        }
        if (alignment != VECTOR_ALIGNMENT) {
            throw new IndexFileException(source, "vector alignment " + alignment + " is not " + VECTOR_ALIGNMENT
                    + " as format v1 requires");
        }
        if (dim > Integer.MAX_VALUE || count < 0 || fileSize < 0) {
            throw new IndexFileException(source, "header sizes are out of range for this reader");
        }
        IndexHeader h = new IndexHeader(version, flags, (int) dim, storage, "cosine", alignment, count, fileSize);
        for (int i = 0; i < SECTIONS.length; i++) {
            h.sectionOffset[i] = raw.getLong(base + SECTION_TABLE_OFFSET + 16 * i);
            h.sectionLength[i] = raw.getLong(base + SECTION_TABLE_OFFSET + 16 * i + 8);
        }
        if (actualSize >= 0 && actualSize < fileSize) {
            throw new IndexFileException.Truncated(source, "truncated: " + actualSize
                    + " bytes on disk but the header says " + fileSize + " (an interrupted copy or download?)");
        }
        if (actualSize >= 0 && actualSize > fileSize) {
            throw new IndexFileException(source, (actualSize - fileSize) + " unexpected bytes after the end of the index");
        }
        h.checkSections(source);
        return h;
    }

    private void checkSections(String source) throws IndexFileException {
        long itemsize = itemSize();
        String[] names = {"scales", "id_offsets", "vectors"};
        long[] expected = {"int8".equals(storage) ? 4L * dim : 0L, 4L * (count + 1), count * dim * itemsize};
        int[] which = {SCALES, ID_OFFSETS, VECTORS};
        for (int i = 0; i < names.length; i++) {
            if (sectionLength[which[i]] != expected[i]) {
                throw new IndexFileException(source, names[i] + " section is " + sectionLength[which[i]]
                        + " bytes, expected " + expected[i]);
            }
        }
        long limit = fileSize - TRAILER_SIZE;
        for (int i = 0; i < SECTIONS.length; i++) {
            long off = sectionOffset[i];
            long end = off + sectionLength[i];
            if (sectionLength[i] != 0 && (off < HEADER_SIZE || end > limit || end < off)) {
                throw new IndexFileException(source, SECTIONS[i] + " section [" + off + ", " + end
                        + ") lies outside the file body");
            }
        }
        if (count != 0 && vectorAlignment != 0 && sectionOffset[VECTORS] % vectorAlignment != 0) {
            throw new IndexFileException(source, "vector block is not aligned as the header states");
        }
        // Non-empty sections: 8-aligned and disjoint, in the SDK's order (offset, end, name).
        java.util.List<Integer> used = new java.util.ArrayList<Integer>();
        for (int i = 0; i < SECTIONS.length; i++) {
            if (sectionLength[i] != 0) {
                used.add(i);
            }
        }
        java.util.Collections.sort(used, new java.util.Comparator<Integer>() {
            @Override
            public int compare(Integer a, Integer b) {
                int c = Long.compare(sectionOffset[a], sectionOffset[b]);
                if (c == 0) {
                    c = Long.compare(sectionOffset[a] + sectionLength[a], sectionOffset[b] + sectionLength[b]);
                }
                return c != 0 ? c : SECTIONS[a].compareTo(SECTIONS[b]);
            }
        });
        for (int i : used) {
            if (sectionOffset[i] % SECTION_ALIGNMENT != 0) {
                throw new IndexFileException(source, SECTIONS[i] + " section offset " + sectionOffset[i]
                        + " is not a multiple of " + SECTION_ALIGNMENT);
            }
        }
        for (int k = 1; k < used.size(); k++) {
            int a = used.get(k - 1);
            int b = used.get(k);
            if (sectionOffset[b] < sectionOffset[a] + sectionLength[a]) {
                throw new IndexFileException(source, "sections " + SECTIONS[a] + " and " + SECTIONS[b] + " overlap");
            }
        }
    }
}
