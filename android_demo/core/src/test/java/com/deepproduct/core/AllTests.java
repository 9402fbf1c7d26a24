package com.deepproduct.core;

import org.junit.internal.TextListener;
import org.junit.runner.JUnitCore;
import org.junit.runner.Result;

/**
 * Runs every test class with JUnit 4's text listener (its usual summary), then prints a closing
 * "N passed, N failed" line that CI logs read, and exits non-zero on any failure.
 */
public final class AllTests {
    static final Class<?>[] CLASSES = {
        JsonTest.class,
        JsonVectorsTest.class,
        PreprocessorTest.class,
        GalleryIndexTest.class,
        SearchVectorsTest.class,
        CoarseScanTest.class,
        BadInputTest.class,
        ModelManifestTest.class,
        HostileVectorsTest.class,
    };

    private AllTests() {
    }

    public static void main(String[] args) {
        JUnitCore core = new JUnitCore();
        core.addListener(new TextListener(System.out));
        Result r = core.run(CLASSES);
        int failed = r.getFailureCount();
        int passed = r.getRunCount() - failed;
        System.out.println("jvm-core: " + passed + " passed, " + failed + " failed"
                + (r.getIgnoreCount() > 0 ? ", " + r.getIgnoreCount() + " skipped" : ""));
        System.exit(r.wasSuccessful() && r.getRunCount() > 0 ? 0 : 1);
    }
}
