package org.regnetkeras.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test

class StatusBoardTest {
    @Test
    fun aLaterReadyMessageDoesNotHideACameraError() {
        val board = StatusBoard()
        board.show(StatusSource.MODEL, "Loading model...")
        board.showError(StatusSource.CAMERA, "The camera could not be started.")
        board.show(StatusSource.MODEL, "Model ready")
        assertEquals("The camera could not be started.\nModel ready", board.text())
        assertTrue(board.hasError)
    }

    @Test
    fun eachSourceReplacesOrClearsOnlyItsOwnLine() {
        val board = StatusBoard()
        board.showError(StatusSource.MODEL, "Model failed")
        board.show(StatusSource.PHOTO, "No photo chosen.")
        board.show(StatusSource.CAMERA, "Waiting for frames")
        assertEquals(listOf(StatusSource.MODEL, StatusSource.CAMERA, StatusSource.PHOTO), board.lines().map { it.source })
        board.show(StatusSource.MODEL, "Model ready")
        board.clear(StatusSource.CAMERA)
        assertEquals("Model ready\nNo photo chosen.", board.text())
        assertFalse(board.hasError)
        board.clear(StatusSource.MODEL)
        board.clear(StatusSource.PHOTO)
        assertEquals("", board.text())
    }
}
