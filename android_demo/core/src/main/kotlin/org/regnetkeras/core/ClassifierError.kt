package org.regnetkeras.core

/** What went wrong, worded for the screen: the app shows [message] instead of crashing. */
sealed class ClassifierError {
    abstract val message: String

    /** The metadata JSON is malformed, of another format or version, or misses a field. */
    data class InvalidMetadata(val field: String, val problem: String) : ClassifierError() {
        override val message: String = "Model metadata is not usable: field $field $problem."
    }

    /** The metadata and the model file disagree (input shape or type, output width). */
    data class ModelMismatch(val field: String, val problem: String) : ClassifierError() {
        override val message: String = "Model file and metadata disagree: $field $problem."
    }

    /** A model asset is missing or cannot be read. */
    data class MissingAsset(val name: String, val problem: String) : ClassifierError() {
        override val message: String = "Model asset $name $problem."
    }

    /** The frame or photo handed to the classifier is not a usable image. */
    data class InvalidImage(val problem: String) : ClassifierError() {
        override val message: String = "Image cannot be classified: $problem."
    }

    /** The camera cannot deliver frames (permission refused, no camera, binding failed); [text]
     * is the app's own wording, which names what the user can do instead. */
    data class CameraUnavailable(val text: String) : ClassifierError() {
        override val message: String = text
    }

    /** The runtime failed to load or run the model. */
    data class InferenceFailed(val problem: String) : ClassifierError() {
        override val message: String = "Inference failed: $problem."
    }

    /** The runtime's native code or classes cannot be loaded on this device: nothing the user
     * picks can fix it, but the app keeps running and says so. */
    data class RuntimeUnavailable(val problem: String) : ClassifierError() {
        override val message: String = "LiteRT cannot run on this device: $problem. The camera " +
            "and photo picker still work; classification needs a device LiteRT supports."
    }

    /** Memory ran out while doing [task]; the allocation that failed is gone, the app goes on. */
    data class OutOfMemory(val task: String) : ClassifierError() {
        override val message: String = "Out of memory while $task: pick a smaller model or " +
            "photo, or close other apps, then try again."
    }
}

/** Carries a [ClassifierError] through code that throws; [Outcome.of] turns it back into a value. */
class ClassifierException(val error: ClassifierError) : Exception(error.message)

/**
 * Success or a [ClassifierError]. Kotlin's own Result cannot be a return type in Kotlin 1.3,
 * which the core must compile with.
 */
sealed class Outcome<out T> {
    data class Success<out T>(val value: T) : Outcome<T>()
    data class Failure(val error: ClassifierError) : Outcome<Nothing>()

    companion object {
        /** Runs [block]; a [ClassifierException] becomes a [Failure], anything else propagates. */
        inline fun <T> of(block: () -> T): Outcome<T> =
            try {
                Success(block())
            } catch (exception: ClassifierException) {
                Failure(exception.error)
            }
    }
}
