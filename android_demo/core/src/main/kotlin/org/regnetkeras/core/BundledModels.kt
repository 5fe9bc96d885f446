package org.regnetkeras.core

/** A model shipped in the app's assets: NAME.tflite with its metadata NAME.json beside it. */
data class BundledModel(val name: String, val modelAsset: String, val metadataAsset: String)

/** The models found among asset names, and what is wrong with the incomplete ones. */
class ModelCatalog(val models: List<BundledModel>, val problems: List<ClassifierError>)

object BundledModels {
    private const val MODEL_SUFFIX = ".tflite"
    private const val METADATA_SUFFIX = ".json"

    /**
     * Pairs NAME.tflite with NAME.json (what tools.convert --android_assets copies). A model
     * without metadata or metadata without a model is reported, not listed: the app takes
     * labels and input size only from the metadata.
     */
    fun find(assetNames: List<String>): ModelCatalog {
        val names = assetNames.toSet()
        val models = ArrayList<BundledModel>()
        val problems = ArrayList<ClassifierError>()
        for (metadataAsset in names.filter { it.endsWith(METADATA_SUFFIX) }.sorted()) {
            val name = metadataAsset.removeSuffix(METADATA_SUFFIX)
            val modelAsset = name + MODEL_SUFFIX
            if (modelAsset in names) {
                models.add(BundledModel(name, modelAsset, metadataAsset))
            } else {
                problems.add(ClassifierError.MissingAsset(modelAsset, "is missing beside $metadataAsset"))
            }
        }
        for (modelAsset in names.filter { it.endsWith(MODEL_SUFFIX) }.sorted()) {
            val metadataAsset = modelAsset.removeSuffix(MODEL_SUFFIX) + METADATA_SUFFIX
            if (metadataAsset !in names) {
                problems.add(ClassifierError.MissingAsset(metadataAsset,
                    "is missing beside $modelAsset (labels and input size come from it)"))
            }
        }
        return ModelCatalog(models, problems)
    }
}
