import org.jetbrains.kotlin.gradle.dsl.JvmTarget

// Plain Kotlin/JVM: everything that does not need Android (metadata, preprocessing,
// postprocessing, the Classifier interface). The same sources compile with Kotlin 1.3
// (android_demo/core/run_tests.sh, used by the Python test suite).
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
    testImplementation(libs.junit)
}

tasks.test {
    useJUnit()
}
