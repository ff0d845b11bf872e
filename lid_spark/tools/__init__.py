"""Tools around the runtime: the synthetic world, model pretraining, the Spleeter environment."""
