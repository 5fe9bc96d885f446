package org.regnetkeras.core

/** The sources of status messages: each owns one line, so one never hides another's. ASSETS
 * names bundled files that cannot be used (a model without its metadata, or the reverse). */
enum class StatusSource { MODEL, CAMERA, PHOTO, ASSETS }

/** One status line; errors are shown in the error colour and before plain messages. */
data class StatusLine(val source: StatusSource, val text: String, val isError: Boolean)

/**
 * The status area's content. A single text field that every event overwrote let a later
 * "model ready" hide an earlier camera error; here each source keeps its own line until it
 * replaces or clears it.
 */
class StatusBoard {
    private val lines = LinkedHashMap<StatusSource, StatusLine>()

    @Synchronized
    fun show(source: StatusSource, text: String) {
        lines[source] = StatusLine(source, text, false)
    }

    @Synchronized
    fun showError(source: StatusSource, text: String) {
        lines[source] = StatusLine(source, text, true)
    }

    @Synchronized
    fun clear(source: StatusSource) {
        lines.remove(source)
    }

    /** Errors first, then plain messages, each group in [StatusSource] order. */
    @Synchronized
    fun lines(): List<StatusLine> =
        lines.values.sortedWith(compareBy<StatusLine>({ !it.isError }, { it.source.ordinal }))

    val hasError: Boolean
        @Synchronized get() = lines.values.any { it.isError }

    fun text(): String = lines().joinToString("\n") { it.text }
}
