import org.jetbrains.kotlin.gradle.dsl.JvmTarget

// Plain Kotlin/JVM: everything that does not need Android (metadata, preprocessing,
// postprocessing, the Classifier interface). The same sources compile with Kotlin 1.3
// (android_demo/core/run_tests.sh, used by the Python test suite, with Debian's Gson 2.10).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    // Gson's streaming JsonReader for the metadata (Json.kt); no reflection, so nothing for R8 to keep.
    implementation(libs.gson)
    testImplementation(libs.junit)
}

tasks.test {
    useJUnit()
}
