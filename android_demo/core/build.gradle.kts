// Pure-JVM core (Java 8 level, no android.*, no java.nio.file) so it runs on old Android and is
// tested on Linux CI without an Android SDK (see run_tests.sh, which uses javac + JUnit 4 directly).
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_1_8
    targetCompatibility = JavaVersion.VERSION_1_8
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // The shared vectors the Python SDK, this core, the Swift core and the JS core are all tested on.
    systemProperty("deepproduct.vectors", rootProject.file("../tests/vectors").absolutePath)
}
