// Android Gradle Plugin 9 compiles the app's Kotlin itself (built-in Kotlin); the Kotlin JVM
// plugin builds the Android-free core module, and its version is the Kotlin both use.
plugins {
    alias(libs.plugins.android.application) apply false
    alias(libs.plugins.kotlin.jvm) apply false
}
