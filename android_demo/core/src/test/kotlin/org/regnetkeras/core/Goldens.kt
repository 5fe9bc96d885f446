package org.regnetkeras.core

/** The files `python -m tools.android_goldens` writes into src/test/resources/goldens. */
object Goldens {
    class Image(val name: String, val width: Int, val height: Int, val argb: IntArray)

    fun text(name: String): String {
        val stream = Goldens::class.java.getResourceAsStream("/goldens/$name")
            ?: throw AssertionError("golden file $name is not on the test classpath " +
                "(write it with python -m tools.android_goldens)")
        return stream.use { String(it.readBytes(), Charsets.UTF_8) }
    }

    @Suppress("UNCHECKED_CAST")
    fun cases(name: String): List<Map<String, Any?>> =
        (Json.parse(text(name)) as Map<String, Any?>)["cases"] as List<Map<String, Any?>>

    fun metadata(name: String): ModelMetadata = ModelMetadata.parse(text("metadata/$name.json"))

    val metadataNames = listOf("float32_crop0875", "float32_imagenet_crop1", "float32_nonsquare",
        "uint8_pixels", "uint8_affine", "int8")

    val images: Map<String, Image> by lazy {
        cases("images.json").map {
            val name = it["name"] as String
            name to Image(name, int(it["width"]), int(it["height"]), ints(it["argb"]))
        }.toMap()
    }

    fun int(value: Any?): Int = (value as Double).toInt()

    fun ints(value: Any?): IntArray {
        val list = value as List<*>
        return IntArray(list.size) { (list[it] as Double).toInt() }
    }

    fun doubles(value: Any?): DoubleArray {
        val list = value as List<*>
        return DoubleArray(list.size) { list[it] as Double }
    }
}
