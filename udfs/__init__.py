"""pandas UDFs: thin wrappers that load models once per Python worker and call lid_spark."""
