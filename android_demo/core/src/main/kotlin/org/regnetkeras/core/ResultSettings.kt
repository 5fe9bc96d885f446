package org.regnetkeras.core

/**
 * Which of a picture's top classes are shown: at most [maxResults], each with a score of at least
 * [scoreThreshold] (a probability after the model's softmax). Applied to every result, so a change
 * needs no model reload.
 */
data class ResultSettings(val maxResults: Int = DEFAULT_MAX_RESULTS, val scoreThreshold: Double = DEFAULT_THRESHOLD) {
    init {
        if (maxResults !in 1..TensorClassifier.DEFAULT_TOP_K) {
            throw IllegalArgumentException("maxResults must be in 1..${TensorClassifier.DEFAULT_TOP_K}, not $maxResults")
        }
        if (!(scoreThreshold >= 0.0 && scoreThreshold < 1.0)) {
            throw IllegalArgumentException("scoreThreshold must be in [0, 1), not $scoreThreshold")
        }
    }

    /** The labels of [top] (best first) that pass both settings. */
    fun select(top: List<ScoredLabel>): List<ScoredLabel> =
        top.filter { it.score >= scoreThreshold }.take(maxResults)

    companion object {
        const val DEFAULT_MAX_RESULTS = 3
        const val DEFAULT_THRESHOLD = 0.0

        /** The choices offered: every count the classifier computes. */
        val MAX_RESULT_CHOICES: List<Int> = (1..TensorClassifier.DEFAULT_TOP_K).toList()

        /** Thresholds in steps of 0.1, as the official LiteRT samples offer them. */
        val THRESHOLD_CHOICES: List<Double> = (0..9).map { it / 10.0 }
    }
}
