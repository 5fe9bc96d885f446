import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
}

android {
    namespace = "org.regnetkeras.demo"
    // 36: androidx core-ktx 1.17.0 and activity 1.11.0 declare minCompileSdk 36 in their AAR
    // metadata (checkDebugAarMetadata fails below it); AGP 9.1 supports 36.
    compileSdk = 36

    defaultConfig {
        applicationId = "org.regnetkeras.demo"
        // 24 (Android 7.0): LiteRT 2.1.x requires 23 (2.0.3 required 26).
        minSdk = 24
        targetSdk = 36
        versionCode = 1
        versionName = "1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    // Models are memory-mapped straight from the APK, which needs them stored uncompressed.
    androidResources {
        noCompress += "tflite"
    }
}

// AGP 9's built-in Kotlin has no android.kotlinOptions; compiler options live here.
kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    implementation(project(":core"))

    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.appcompat)
    implementation(libs.androidx.activity.ktx)
    implementation(libs.androidx.lifecycle.viewmodel.ktx)
    implementation(libs.androidx.lifecycle.viewmodel.savedstate)
    implementation(libs.androidx.lifecycle.livedata.ktx)
    implementation(libs.androidx.constraintlayout)
    implementation(libs.androidx.exifinterface)
    implementation(libs.material)

    implementation(libs.camera.core)
    implementation(libs.camera.camera2)
    implementation(libs.camera.lifecycle)
    implementation(libs.camera.view)

    // LiteRT 2.x: CompiledModel (CPU through XNNPACK, GPU through the accelerator it loads at
    // run time) and the Interpreter it keeps for compatibility (CPU), in one artifact. Not the
    // Task Library: its native libraries fail Google Play's 16 KB rule.
    implementation(libs.litert)
}
