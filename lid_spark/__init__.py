"""lid-spark: singing-language identification for music catalogs, on Apache Spark."""

__version__ = "0.1.0"

# The paper's ten target languages (ISO 639-1): the default of ``classifier.languages`` and of
# ``synth.targets``. A catalog chooses its own (lid_spark.languages); everything else is "ot".
TARGET_LANGUAGES = ("de", "en", "es", "fr", "hi", "it", "ja", "pa", "ta", "te")
OTHER_LANGUAGE = "ot"
# The default classes (the paper's): a trained artifact records its own (LanguageClassifier.languages).
LANGUAGE_CLASSES = TARGET_LANGUAGES + (OTHER_LANGUAGE,)
# ISO 639-2 "no linguistic content": what instrumental tracks are tagged with.
INSTRUMENTAL = "zxx"
