"""lucid trainer: data, training/evaluation loops, checkpoints, logging and metrics built on lucid."""
