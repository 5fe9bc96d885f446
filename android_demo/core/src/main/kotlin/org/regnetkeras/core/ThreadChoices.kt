package org.regnetkeras.core

/**
 * The CPU thread counts offered for a device: 1, 2 and 4 where the device has that many cores,
 * and all of its cores. More threads than cores only make XNNPACK's threads wait for each other.
 */
object ThreadChoices {
    /** The counts to offer, ascending, for [cores] available processors (at least [1]). */
    fun forCores(cores: Int): List<Int> {
        val usable = maxOf(cores, 1)
        return (listOf(1, 2, 4) + usable).filter { it <= usable }.distinct().sorted()
    }

    /** The count to start with: the largest choice up to 4, as phones' big cores rarely number
     * more and the little ones slow a run down. */
    fun default(choices: List<Int>): Int = choices.lastOrNull { it <= 4 } ?: 1
}
