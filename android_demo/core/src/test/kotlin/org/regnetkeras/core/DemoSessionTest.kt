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

    private val cpu = RuntimeChoice(modelIndex = 0, threads = 4, useGpu = false)
    private val gpu = RuntimeChoice(modelIndex = 0, threads = 4, useGpu = true)

    @Test
    fun aRecreatedActivityAnnouncingTheSameChoiceReloadsNothing() {
        val session = DemoSession<FakeModel>()
        val ticket = session.choose(cpu)!!
        assertTrue(session.finishLoad(ticket, FakeModel("a")))
        session.mode = SourceMode.PHOTO
        // Rotation: the Activity is new, the session is the ViewModel's. Its restored spinner and
        // switch fire their listeners with the values they show, which are the session's.
        val restored = session.currentChoice!!
        assertNull(session.choose(restored))
        assertNull(session.choose(RuntimeChoice(restored.modelIndex, restored.threads, restored.useGpu)))
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
        session.recordFrame(0L)
        assertEquals(10.0, session.recordFrame(100_000_000L), 1e-9)
        // Paused for a minute: without the reset the window would span the pause (about 0.03 FPS).
        session.resetFrameRate()
        assertEquals(0.0, session.recordFrame(60_100_000_000L), 0.0)
        assertEquals(20.0, session.recordFrame(60_150_000_000L), 1e-9)
    }

    @Test
    fun statusLinesLiveInTheSession() {
        val session = DemoSession<FakeModel>()
        session.status.showError(StatusSource.CAMERA, "camera failed")
        session.status.show(StatusSource.MODEL, "ready")
        assertEquals("camera failed\nready", session.status.text())
    }
}
