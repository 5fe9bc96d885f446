package org.regnetkeras.core

import java.io.Closeable
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * Runs every interleaving of a UI thread's actions (mode switches, photo picks, model choices,
 * retries) with an inference thread's work (frames, photo results and failures, model loads) and
 * checks the screen after each step against a reference written in terms of event order, not
 * generations: work may show its result or error only if no switch happened since it started.
 */
class SourceInterleavingTest {
    private class Model : Closeable {
        override fun close() = Unit
    }

    /** One action on one thread; [needs] names a token or ticket an earlier action must issue
     * (work is queued by the action that creates it, so it never runs before it). */
    private class Op(val name: String, val ui: Boolean, val needs: String?, val run: (World) -> Unit)

    /** The session, and the reference's own account of what the screen must show. */
    private class World {
        val session = DemoSession<Model>()
        val tokens = HashMap<String, SourceToken?>()
        val tickets = HashMap<String, LoadTicket>()
        val issuedAtSwitch = HashMap<String, Int>()
        var switches = 0
        var mode = SourceMode.CAMERA
        var shown: String? = null
        val errors = HashMap<SourceMode, String>()

        fun mayLand(work: String): Boolean {
            val token = tokens[work] ?: return false
            return token.source == mode && issuedAtSwitch[work] == switches
        }

        fun switchTo(source: SourceMode) {
            switches++
            mode = source
            shown = null
            errors.clear()
        }
    }

    private val cpu = RuntimeChoice(0, 4, Accelerator.CPU)
    private val gpu = RuntimeChoice(0, 4, Accelerator.GPU)

    private fun result(label: String) = ClassificationResult(listOf(ScoredLabel(0, label, 0.9)), 1.0, 2.0, 0.5)

    private fun camera() = Op("camera", true, null) { world ->
        world.session.enterCamera()
        world.switchTo(SourceMode.CAMERA)
    }

    private fun photo(name: String) = Op("photo:$name", true, null) { world ->
        world.tokens[name] = world.session.startPhoto()
        world.switchTo(SourceMode.PHOTO)
        world.issuedAtSwitch[name] = world.switches
    }

    private fun choose(name: String, choice: RuntimeChoice) = Op("choose:$name", true, null) { world ->
        world.session.choose(choice)?.let { world.tickets[name] = it }
    }

    private fun retry(name: String) = Op("retry:$name", true, null) { world ->
        world.session.retry()?.let { world.tickets[name] = it }
    }

    /** The analyzer takes a frame: a token only while the camera is the source. */
    private fun frameStart(name: String) = Op("frameStart:$name", false, null) { world ->
        world.tokens[name] = world.session.tokenFor(SourceMode.CAMERA)
        world.issuedAtSwitch[name] = world.switches
    }

    /** After a load, the photo on screen is classified again with the new model. */
    private fun reclassifyStart(name: String) = Op("reclassify:$name", false, null) { world ->
        world.tokens[name] = world.session.tokenFor(SourceMode.PHOTO)
        world.issuedAtSwitch[name] = world.switches
    }

    private fun deliver(work: String, needs: String) = Op("deliver:$work", false, needs) { world ->
        val token = world.tokens[work]
        val expected = world.mayLand(work)
        val landed = token != null &&
            world.session.deliver(token, result(work), listOf(ScoredLabel(0, work, 0.9)), world.switches * 1_000_000L)
        assertEquals("deliver $work", expected, landed)
        if (expected) {
            world.shown = work
            world.errors.remove(world.mode)
        }
    }

    private fun failWork(work: String, needs: String) = Op("fail:$work", false, needs) { world ->
        val token = world.tokens[work]
        val expected = world.mayLand(work)
        val shownError = token != null && world.session.fail(token, ClassifierError.InferenceFailed(work))
        assertEquals("fail $work", expected, shownError)
        if (expected) world.errors[world.mode] = ClassifierError.InferenceFailed(work).message
    }

    /** The inference thread runs a queued load: only the newest ticket replaces the model (and
     * with it the result it produced); a failure is kept for retry. */
    private fun load(ticketName: String, succeeds: Boolean) = Op("load:$ticketName", false, "ticket:$ticketName") { world ->
        val ticket = world.tickets[ticketName] ?: return@Op
        if (!world.session.isCurrent(ticket)) return@Op
        world.session.detachModel()
        world.shown = null
        if (succeeds) {
            assertTrue(world.session.finishLoad(ticket, Model()))
        } else {
            assertTrue(world.session.failLoad(ticket, ClassifierError.InferenceFailed("load")))
        }
    }

    private fun checkScreen(world: World, history: List<String>) {
        val session = world.session
        assertEquals("mode after $history", world.mode, session.mode)
        val shown = session.shownResult
        assertEquals("result after $history", world.shown, shown?.top?.first()?.label)
        if (shown != null) assertEquals("result source after $history", world.mode, shown.source)
        val sourceLines = session.status.lines().filter { it.source != StatusSource.MODEL }
        val expectedLines = world.errors.map { (source, message) ->
            StatusLine(if (source == SourceMode.CAMERA) StatusSource.CAMERA else StatusSource.PHOTO, message, true)
        }
        assertEquals("status after $history", expectedLines.toSet(), sourceLines.toSet())
    }

    private fun issued(world: World, needs: String?): Boolean {
        if (needs == null) return true
        if (needs.startsWith("ticket:")) return world.tickets.containsKey(needs.removePrefix("ticket:"))
        return world.tokens.containsKey(needs)
    }

    /** Runs every merge of [ui] and [inference] that keeps each thread's order; returns the count. */
    private fun everyInterleaving(ui: List<Op>, inference: List<Op>, prepare: (World) -> Unit = {}): Int {
        var count = 0
        fun walk(i: Int, j: Int, order: List<Op>) {
            if (i == ui.size && j == inference.size) {
                val world = World()
                prepare(world)
                val history = ArrayList<String>()
                for (op in order) {
                    // Work queued by a UI action that has not happened in this order is not
                    // queued yet: the merge that runs it later covers that case.
                    if (!issued(world, op.needs)) return
                    op.run(world)
                    history.add(op.name)
                    checkScreen(world, history)
                }
                count++
                return
            }
            if (i < ui.size) walk(i + 1, j, order + ui[i])
            if (j < inference.size) walk(i, j + 1, order + inference[j])
        }
        walk(0, 0, emptyList())
        return count
    }

    @Test
    fun onlyWorkStartedSinceTheLastSwitchReachesTheScreen() {
        val ui = listOf(photo("p1"), camera(), photo("p2"), camera())
        val inference = listOf(frameStart("f1"), deliver("p1", "p1"), deliver("f1", "f1"),
            failWork("p2", "p2"), frameStart("f2"), failWork("f2", "f2"), deliver("p2", "p2"))
        val runs = everyInterleaving(ui, inference)
        assertEquals("interleavings run", 94, runs)
    }

    @Test
    fun aPhotoResultOrErrorNeverLandsOverTheCameraAfterASwitch() {
        // The case the camera button must handle: photo work finishes after Camera was tapped
        // (and the camera permission then refused, so no frame ever replaces it).
        val ui = listOf(photo("p1"), camera())
        val inference = listOf(failWork("p1", "p1"), deliver("p1", "p1"), reclassifyStart("r1"), deliver("r1", "r1"))
        assertEquals("interleavings run", 5, everyInterleaving(ui, inference))
    }

    @Test
    fun loadsRetriesAndSwitchesInterleaved() {
        val ui = listOf(choose("t1", cpu), photo("p1"), choose("t2", gpu), retry("t3"), camera())
        val inference = listOf(load("t1", succeeds = true), deliver("p1", "p1"), load("t2", succeeds = false),
            reclassifyStart("r1"), deliver("r1", "r1"), load("t3", succeeds = true), frameStart("f1"), deliver("f1", "f1"))
        assertEquals("interleavings run", 75, everyInterleaving(ui, inference))
    }
}
