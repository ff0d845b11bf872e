"""spark-submit entry points, one per stage: ``spark-submit jobs/<name>.py [options]``.

Installed as ``lid_spark.jobs``. Each job parses its arguments and calls one library function
(``lid_spark.stages.<name>.run`` for the pipeline's stages, the tools' functions for the others).
"""
