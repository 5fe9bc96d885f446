package org.regnetkeras.core

/** What the inference thread was doing when something failed, worded for a message. */
enum class Task(val description: String) {
    LOADING_MODEL("loading the model"),
    CLASSIFYING_FRAME("classifying a camera frame"),
    READING_PHOTO("reading the photo"),
    CLASSIFYING_PHOTO("classifying the photo")
}

/**
 * Turns anything thrown on the inference thread into a [ClassifierError] for the screen.
 *
 * The thread catches Throwable, not only RuntimeException: LiteRT reports a native library that
 * does not load as UnsatisfiedLinkError (LiteRT 1.4.0 on Android 7, "cannot locate symbol
 * strtod_l"), and a large photo can raise OutOfMemoryError; either, uncaught, ends the thread
 * and with it the app.
 */
object Failures {
    /** Longest excerpt of a runtime's own message shown on screen. */
    private const val MAX_DETAIL = 160

    fun describe(error: Throwable, task: Task): ClassifierError = when (error) {
        is ClassifierException -> error.error
        is OutOfMemoryError -> ClassifierError.OutOfMemory(task.description)
        is UnsatisfiedLinkError -> ClassifierError.RuntimeUnavailable(
            "its native library does not load (${detail(innermostLinkMessage(error))})")
        is LinkageError -> ClassifierError.RuntimeUnavailable(
            "part of it is missing from this build (${error.javaClass.simpleName}: ${detail(error.message)})")
        else -> {
            val what = detail(error.message ?: error.javaClass.simpleName)
            if (task == Task.READING_PHOTO) {
                ClassifierError.InvalidImage("the photo could not be read ($what)")
            } else {
                ClassifierError.InferenceFailed("${task.description}: $what")
            }
        }
    }

    /**
     * False for errors after which the virtual machine itself is not trustworthy (InternalError,
     * UnknownError); those are rethrown. Everything else, OutOfMemoryError and
     * StackOverflowError included, leaves the app able to go on once the failed work is dropped.
     */
    fun isRecoverable(error: Throwable): Boolean =
        !(error is VirtualMachineError && error !is OutOfMemoryError && error !is StackOverflowError)

    /** LiteRT wraps the loader's UnsatisfiedLinkError in its own ("Failed to load native
     * TensorFlow Lite methods. ... : java.lang.UnsatisfiedLinkError: dlopen failed: ..."); the
     * loader's part names the missing symbol. */
    private fun innermostLinkMessage(error: UnsatisfiedLinkError): String? {
        val message = error.message ?: return null
        val marker = "UnsatisfiedLinkError: "
        val at = message.lastIndexOf(marker)
        return if (at < 0) message else message.substring(at + marker.length)
    }

    private fun detail(message: String?): String {
        val text = (message ?: "no detail").trim().lineSequence().first()
        return if (text.length <= MAX_DETAIL) text else text.substring(0, MAX_DETAIL - 3) + "..."
    }
}
