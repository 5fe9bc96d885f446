"""RegNet as a KerasHub citizen: presets, from_preset on timm's Hub repositories, and the
ImageClassifier task (KerasHub's layout: one class per file, linked by backbone_cls,
preprocessor_cls and image_converter_cls). keras_hub is needed only by the class modules.

    backbone.py                        RegNetHubBackbone (FeaturePyramidBackbone, P1..P5)
    image_converter.py                 RegNetImageConverter (resize, mean/std normalisation)
    image_classifier_preprocessor.py   RegNetImageClassifierPreprocessor
    image_classifier.py                RegNetImageClassifier (the task)
    presets.py                         timm's Hub repositories of the named weights
    conversion.py                      a timm repository snapshot as a RegNetImageClassifier
    loading.py                         from_preset and tools.train's starting weights
    registration.py                    registers the classes once keras_hub is imported
"""
