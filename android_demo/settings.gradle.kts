// DeepProduct Android demo. Exact versions: Gradle 8.9 (gradle/wrapper), Android Gradle Plugin 8.7.3,
// Kotlin 2.0.21, compileSdk 35 / minSdk 24. ":core" is the pure-JVM core that CI tests on Linux.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "DeepProductDemo"
include(":app", ":core")
