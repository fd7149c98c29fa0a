"""lucid trainer: data, training/evaluation loops, checkpoints, logging and metrics built on lucid.

Modules: ``data`` (torchvision readers -> augmented NumPy batches, ``build_data``), ``augment`` (vectorised
batch augmentation), ``engine`` (fit / evaluate), ``checkpoint``, ``logging`` (TensorBoard), ``metrics``.
Run it with ``python scripts/train.py`` (Hydra configs under conf/).
"""
