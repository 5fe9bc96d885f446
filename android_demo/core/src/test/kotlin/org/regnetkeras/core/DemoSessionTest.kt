package org.regnetkeras.core

import java.io.Closeable
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertSame
import org.junit.Assert.assertTrue
import org.junit.Test

class DemoSessionTest {
    private class FakeModel(val name: String) : Closeable {
        var closed = false
        override fun close() {
            closed = true
        }
    }

    private val cpu = RuntimeChoice(modelIndex = 0, threads = 4, accelerator = Accelerator.CPU)
    private val gpu = RuntimeChoice(modelIndex = 0, threads = 4, accelerator = Accelerator.GPU)

    @Test
    fun aRecreatedActivityAnnouncingTheSameChoiceReloadsNothing() {
        val session = DemoSession<FakeModel>()
        val ticket = session.choose(cpu)!!
        assertTrue(session.finishLoad(ticket, FakeModel("a")))
        session.startPhoto()
        // Rotation: the Activity is new, the session is the ViewModel's. Its restored spinner and
        // switch fire their listeners with the values they show, which are the session's.
        val restored = session.currentChoice!!
        assertNull(session.choose(restored))
        assertNull(session.choose(RuntimeChoice(restored.modelIndex, restored.threads, restored.accelerator)))
        assertEquals("a", session.model!!.name)
        assertEquals(SourceMode.PHOTO, session.mode)
    }

    @Test
    fun theSameChoiceWhileLoadingStartsNoSecondLoad() {
        val session = DemoSession<FakeModel>()
        assertNotNull(session.choose(cpu))
        assertNull(session.choose(cpu))
    }

    @Test
    fun aNewerChoiceMakesAnOlderTicketStale() {
        val session = DemoSession<FakeModel>()
        val first = session.choose(cpu)!!
        val second = session.choose(gpu)!!
        assertFalse(session.isCurrent(first))
        assertTrue(session.isCurrent(second))
        val late = FakeModel("late")
        assertFalse("a stale load must not install its model", session.finishLoad(first, late))
        assertNull(session.model)
        assertFalse(session.failLoad(first, ClassifierError.InferenceFailed("old")))
        assertNull(session.loadFailure)
        assertTrue(session.finishLoad(second, FakeModel("gpu")))
        assertEquals("gpu", session.model!!.name)
    }

    @Test
    fun aFailedLoadCanBeRetriedWithTheSameChoice() {
        val session = DemoSession<FakeModel>()
        assertNull("nothing to retry before a choice", session.retry())
        val ticket = session.choose(cpu)!!
        assertNull("nothing to retry while loading", session.retry())
        val error = ClassifierError.RuntimeUnavailable("its native library does not load")
        assertTrue(session.failLoad(ticket, error))
        assertEquals(error, session.loadFailure)
        assertNull("choosing the same again is not how to retry", session.choose(cpu))
        val again = session.retry()!!
        assertEquals(cpu, again.choice)
        assertNull(session.loadFailure)
        assertFalse(session.isCurrent(ticket))
        assertTrue(session.finishLoad(again, FakeModel("a")))
        assertNull("nothing to retry once loaded", session.retry())
    }

    @Test
    fun theModelInUseIsHandedBackBeforeTheNextLoad() {
        val session = DemoSession<FakeModel>()
        val first = FakeModel("a")
        session.finishLoad(session.choose(cpu)!!, first)
        session.choose(gpu)
        assertSame(first, session.detachModel())
        assertNull(session.model)
        assertNull(session.detachModel())
    }

    @Test
    fun closingHandsBackTheModelAndMakesTicketsStale() {
        val session = DemoSession<FakeModel>()
        val model = FakeModel("a")
        session.finishLoad(session.choose(cpu)!!, model)
        val pending = session.choose(gpu)!!
        assertSame(model, session.close())
        assertFalse(session.isCurrent(pending))
        assertNull(session.currentChoice)
    }

    @Test
    fun theFrameRateStartsAgainAfterAPause() {
        val session = DemoSession<FakeModel>(frameWindow = 4)
        val result = ClassificationResult(emptyList(), 0.0, 1.0, 0.0)
        fun frameAt(nanos: Long): Double {
            assertTrue(session.deliver(session.tokenFor(SourceMode.CAMERA)!!, result, emptyList(), nanos))
            return session.shownResult!!.framesPerSecond
        }
        frameAt(0L)
        assertEquals(10.0, frameAt(100_000_000L), 1e-9)
        // Paused for a minute: without the reset the window would span the pause (about 0.03 FPS).
        session.resetFrameRate()
        assertEquals(0.0, frameAt(60_100_000_000L), 0.0)
        assertEquals(20.0, frameAt(60_150_000_000L), 1e-9)
    }

    @Test
    fun statusLinesLiveInTheSession() {
        val session = DemoSession<FakeModel>()
        session.status.showError(StatusSource.CAMERA, "camera failed")
        session.status.show(StatusSource.MODEL, "ready")
        assertEquals("camera failed\nready", session.status.text())
    }

    @Test
    fun aSwitchClearsTheResultAndTheOtherSourcesLine() {
        val session = DemoSession<FakeModel>()
        val frame = session.tokenFor(SourceMode.CAMERA)!!
        assertNull("no photo token while the camera is the source", session.tokenFor(SourceMode.PHOTO))
        val result = ClassificationResult(listOf(ScoredLabel(3, "cat", 0.8)), 1.0, 4.0, 0.1)
        assertTrue(session.deliver(frame, result, result.top, 0L))
        assertEquals(SourceMode.CAMERA, session.shownResult!!.source)
        assertTrue(session.fail(session.tokenFor(SourceMode.CAMERA)!!, ClassifierError.InferenceFailed("frame")))
        val photo = session.startPhoto()
        assertNull(session.shownResult)
        assertEquals("", session.status.text())
        assertFalse("a frame in flight does not land on the photo", session.deliver(frame, result, result.top, 1L))
        assertTrue(session.deliver(photo, result, result.top, 2L))
        assertEquals(0.0, session.shownResult!!.framesPerSecond, 0.0)
    }

    @Test
    fun aNewerPhotoMakesTheEarlierOnesWorkStale() {
        // Both tokens name the photo source: only the generation tells them apart.
        val session = DemoSession<FakeModel>()
        val first = session.startPhoto()
        val second = session.startPhoto()
        val result = ClassificationResult(listOf(ScoredLabel(0, "first", 0.5)), 1.0, 1.0, 0.0)
        assertFalse(session.deliver(first, result, result.top, 0L))
        assertFalse(session.fail(first, ClassifierError.InvalidImage("first")))
        assertFalse(session.report(first, "first"))
        var kept = false
        assertFalse(session.ifCurrent(first) { kept = true })
        assertFalse(kept)
        assertTrue(session.ifCurrent(second) { kept = true })
        assertTrue(kept)
    }

    @Test
    fun theMedianLatencyCoversTheCurrentModelsRunsOnly() {
        val session = DemoSession<FakeModel>(latencyWindow = 3)
        session.finishLoad(session.choose(cpu)!!, FakeModel("a"))
        for (millis in listOf(10.0, 30.0, 20.0, 100.0)) {
            val result = ClassificationResult(emptyList(), 0.0, millis, 0.0)
            session.deliver(session.tokenFor(SourceMode.CAMERA)!!, result, emptyList(), 0L)
        }
        // The window holds 30, 20 and 100: the median is 30 (one slow run does not move it).
        assertEquals(30.0, session.shownResult!!.medianInferenceMillis, 0.0)
        session.detachModel()
        session.finishLoad(session.choose(gpu)!!, FakeModel("b"))
        val result = ClassificationResult(emptyList(), 0.0, 7.0, 0.0)
        session.deliver(session.tokenFor(SourceMode.CAMERA)!!, result, emptyList(), 0L)
        assertEquals(7.0, session.shownResult!!.medianInferenceMillis, 0.0)
    }
}
