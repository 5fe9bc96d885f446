package org.regnetkeras.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test

class FailuresTest {
    @Test
    fun aNativeLibraryThatDoesNotLoadIsAMessageNotACrash() {
        // The message LiteRT 1.4.0 gives on Android 7 (google-ai-edge/LiteRT issue 3274).
        val error = UnsatisfiedLinkError("Failed to load native TensorFlow Lite methods. Check that the " +
            "correct native libraries are present, and, if using a custom native library, have been " +
            "properly loaded via System.loadLibrary():\n  java.lang.UnsatisfiedLinkError: dlopen failed: " +
            "cannot locate symbol \"strtod_l\" referenced by \"libtensorflowlite_jni.so\"...")
        assertTrue(Failures.isRecoverable(error))
        val described = Failures.describe(error, Task.LOADING_MODEL)
        assertTrue(described is ClassifierError.RuntimeUnavailable)
        assertTrue(described.message, described.message.contains("cannot locate symbol \"strtod_l\""))
        assertTrue(described.message.startsWith("LiteRT cannot run on this device"))
    }

    @Test
    fun outOfMemoryNamesWhatWasBeingDoneAndTheWayOut() {
        val error = OutOfMemoryError("Failed to allocate a 201326604 byte allocation")
        assertTrue(Failures.isRecoverable(error))
        val described = Failures.describe(error, Task.READING_PHOTO)
        assertEquals(ClassifierError.OutOfMemory("reading the photo"), described)
        assertTrue(described.message.contains("smaller model or photo"))
    }

    @Test
    fun everyKindOfFailureMapsToItsError() {
        val metadata = ClassifierError.InvalidMetadata("labels", "is missing")
        assertEquals(metadata, Failures.describe(ClassifierException(metadata), Task.LOADING_MODEL))
        assertEquals(ClassifierError.InferenceFailed("classifying a camera frame: Internal error: bad op"),
            Failures.describe(IllegalStateException("Internal error: bad op"), Task.CLASSIFYING_FRAME))
        assertEquals(ClassifierError.InvalidImage("the photo could not be read (not an image)"),
            Failures.describe(java.io.IOException("not an image"), Task.READING_PHOTO))
        val missingClass = Failures.describe(NoClassDefFoundError("org/tensorflow/lite/gpu/GpuDelegate"), Task.LOADING_MODEL)
        assertTrue(missingClass is ClassifierError.RuntimeUnavailable)
        assertTrue(missingClass.message.contains("NoClassDefFoundError: org/tensorflow/lite/gpu/GpuDelegate"))
        assertEquals(ClassifierError.InferenceFailed("classifying the photo: NullPointerException"),
            Failures.describe(NullPointerException(), Task.CLASSIFYING_PHOTO))
        assertTrue(Failures.describe(StackOverflowError(), Task.CLASSIFYING_PHOTO) is ClassifierError.InferenceFailed)
    }

    @Test
    fun longRuntimeMessagesAreCutToOneShortLine() {
        val described = Failures.describe(RuntimeException("x".repeat(500) + "\nsecond line"), Task.LOADING_MODEL)
        assertFalse(described.message.contains("second line"))
        assertTrue(described.message.length < 260)
    }

    @Test
    fun aBrokenVirtualMachineIsNotRecoverable() {
        assertFalse(Failures.isRecoverable(InternalError("VM state")))
        assertFalse(Failures.isRecoverable(UnknownError()))
        assertTrue(Failures.isRecoverable(StackOverflowError()))
        assertTrue(Failures.isRecoverable(RuntimeException()))
    }
}
