"""spark-submit entry points, one per pipeline stage: ``spark-submit jobs/<name>.py [options]``."""
