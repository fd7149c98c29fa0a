"""Batch augmentation in NumPy: random crop with zero padding, horizontal flip, normalisation, mixup/cutmix.

Every function works on a whole batch at once (no per-image Python loop) and takes its randomness from a
``numpy.random.Generator`` passed in by the caller, so a batch is reproducible from its generator alone. The
loader (trainer/data.py) hands each batch ``np.random.default_rng([seed, epoch, batch_index])`` and draws in
this order: crop offsets (when ``padding > 0``), flip mask (when ``hflip``), then the mixup/cutmix parameters.

Images are uint8 **NHWC** arrays up to normalisation and float32 NHWC after it (the loader returns the NCHW
view at the very end, see data.py), so the crop/flip gather and the cutmix box work on the spatial axes 1 and 2.

Mixup and cutmix follow timm's ``timm.data.Mixup`` in its default ``mode='batch'`` (one lambda per batch,
image ``i`` mixed with image ``N-1-i``, cutmix lambda corrected by the clipped box area), with two deliberate
differences: label smoothing is left to the loss, and a batch on which neither fires keeps its int64 targets
instead of becoming one-hot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


# --------------------------------------------------------------------------------------------- crop / flip
def random_crop_flip(images: np.ndarray, padding: int, hflip: bool, rng: np.random.Generator) -> np.ndarray:
    """Random crop after zero padding and random horizontal flip of a uint8 NHWC batch, in one gather.

    Equivalent per image to torchvision's ``RandomCrop(size, padding=padding)`` (zero fill) followed by
    ``RandomHorizontalFlip(0.5)``: image ``n`` is cut from the padded image at row offset ``oy[n]`` and column
    offset ``ox[n]`` (both uniform in ``[0, 2*padding]``) and mirrored left-right where ``flip[n]``.

    Args:
        images: (N, H, W, C) array (any dtype; uint8 in the loader).
        padding: zero border added on every side before cropping; 0 disables the crop.
        hflip: whether to flip half of the images (each with probability 0.5).
        rng: draws ``oy`` and ``ox`` (N each, when ``padding > 0``), then ``flip`` (N, when ``hflip``).

    Returns:
        A new (N, H, W, C) C-contiguous array of the same dtype, or ``images`` itself when both are off.
    """
    if padding < 0:
        raise ValueError(f"crop padding must be >= 0, got {padding}")
    n, h, w, c = images.shape
    if padding == 0 and not hflip:
        return images
    oy = rng.integers(0, 2 * padding + 1, size=n) if padding else np.zeros(n, dtype=np.int64)
    ox = rng.integers(0, 2 * padding + 1, size=n) if padding else np.zeros(n, dtype=np.int64)
    flip = rng.random(n) < 0.5 if hflip else np.zeros(n, dtype=bool)
    hp, wp = h + 2 * padding, w + 2 * padding
    if padding:
        src = np.zeros((n, hp, wp, c), dtype=images.dtype)
        src[:, padding:padding + h, padding:padding + w] = images
    else:
        src = np.ascontiguousarray(images)
    # Source row and column of every output pixel; a flip just reverses the column ramp, so crop and flip
    # together are one gather. Each pixel's C channels move as one opaque item (a void view) through
    # ``take`` on flat indices: 2-5x faster than fancy indexing over (N, H, W) with a trailing channel axis.
    ramp_w = np.arange(w)
    cols = ox[:, None] + np.where(flip[:, None], w - 1 - ramp_w, ramp_w)     # (N, W)
    rows = oy[:, None] + np.arange(h)                                       # (N, H)
    flat = (np.arange(n)[:, None, None] * hp + rows[:, :, None]) * wp + cols[:, None, :]
    pixels = src.view(np.dtype((np.void, c * src.itemsize))).reshape(-1)
    return pixels.take(flat.ravel()).view(images.dtype).reshape(n, h, w, c)


# ------------------------------------------------------------------------------------------- normalisation
def normalize(images: np.ndarray, mean, std) -> np.ndarray:
    """uint8 NHWC -> float32 NHWC ``(x / 255 - mean) / std`` per channel (torchvision ToTensor + Normalize).

    Computed as ``x * (1 / (255 std)) + (-mean / std)`` in float32 with the constants rounded once, which is
    within a few float32 ulps of torchvision's two-step form.
    """
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    scale = (1.0 / (255.0 * std)).astype(np.float32)
    shift = (-mean / std).astype(np.float32)
    out = np.multiply(images, scale, dtype=np.float32)   # fresh C-contiguous float32 buffer, then in place
    out += shift
    return out


# ------------------------------------------------------------------------------------------- mixup / cutmix
@dataclass(frozen=True)
class MixupConfig:
    """Mixup/cutmix settings (timm's ``Mixup`` arguments of the same meaning).

    mixup_alpha / cutmix_alpha: Beta(alpha, alpha) parameter of lambda; 0 disables that kind.
    prob: probability that a batch is mixed at all (timm ``prob``).
    switch_prob: with both kinds enabled, probability of cutmix instead of mixup (timm ``switch_prob``).
    """

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5

    @property
    def enabled(self) -> bool:
        return (self.mixup_alpha > 0.0 or self.cutmix_alpha > 0.0) and self.prob > 0.0


def mix_params(cfg: MixupConfig, rng: np.random.Generator) -> tuple[float, bool]:
    """Draw ``(lam, use_cutmix)`` for one batch exactly as timm's ``Mixup._params_per_batch`` decides.

    ``lam == 1.0`` means "do not mix this batch". Draw order: one uniform against ``prob``; with both kinds on
    one uniform against ``switch_prob``; then one Beta draw.
    """
    if not cfg.enabled or rng.random() >= cfg.prob:
        return 1.0, False
    if cfg.mixup_alpha > 0.0 and cfg.cutmix_alpha > 0.0:
        use_cutmix = bool(rng.random() < cfg.switch_prob)
        alpha = cfg.cutmix_alpha if use_cutmix else cfg.mixup_alpha
    elif cfg.mixup_alpha > 0.0:
        use_cutmix, alpha = False, cfg.mixup_alpha
    else:
        use_cutmix, alpha = True, cfg.cutmix_alpha
    return float(rng.beta(alpha, alpha)), use_cutmix


def cutmix_box(height: int, width: int, lam: float, rng) -> tuple[tuple[int, int, int, int], float]:
    """timm's ``rand_bbox`` + ``cutmix_bbox_and_lam(correct_lam=True)``: box and area-corrected lambda.

    The box has sides ``int(H*sqrt(1-lam))`` x ``int(W*sqrt(1-lam))`` around a uniformly drawn centre
    (``cy = rng.integers(0, H)`` then ``cx = rng.integers(0, W)``), clipped to the image; the returned lambda
    is ``1 - box_area / (H*W)``, the fraction of each image that stays its own.

    Returns:
        ``((y_low, y_high, x_low, x_high), lam_corrected)`` with half-open row/column ranges.
    """
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(rng.integers(0, height))
    cx = int(rng.integers(0, width))
    yl = min(max(cy - cut_h // 2, 0), height)
    yh = min(max(cy + (cut_h + 1) // 2, 0), height)
    xl = min(max(cx - cut_w // 2, 0), width)
    xh = min(max(cx + (cut_w + 1) // 2, 0), width)
    lam = 1.0 - (yh - yl) * (xh - xl) / float(height * width)
    return (yl, yh, xl, xh), lam


def one_hot(targets: np.ndarray, num_classes: int) -> np.ndarray:
    """(N,) int targets -> (N, num_classes) float32 one-hot rows; a target outside [0, num_classes) raises."""
    targets = np.asarray(targets)
    if targets.size and (targets.min() < 0 or targets.max() >= num_classes):
        raise ValueError(f"targets must lie in [0, {num_classes}), got values in "
                         f"[{targets.min()}, {targets.max()}]")
    out = np.zeros((targets.shape[0], num_classes), dtype=np.float32)
    out[np.arange(targets.shape[0]), targets] = 1.0
    return out


def mix_targets(targets: np.ndarray, num_classes: int, lam: float) -> np.ndarray:
    """Soft targets ``lam * onehot(t) + (1 - lam) * onehot(t[::-1])`` (timm ``mixup_target``, no smoothing).

    Returns (N, num_classes) float32 rows that each sum to 1.
    """
    y = one_hot(targets, num_classes)
    return y * np.float32(lam) + y[::-1] * np.float32(1.0 - lam)


def mixup_images(images: np.ndarray, lam: float) -> np.ndarray:
    """In place on a float32 NHWC (or NCHW) batch: ``x[i] = lam * x[i] + (1 - lam) * x[N-1-i]``."""
    partner = images[::-1] * np.float32(1.0 - lam)   # a copy: images[::-1] aliases images
    images *= np.float32(lam)
    images += partner
    return images


def cutmix_images(images: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """In place on an NHWC batch: paste image ``N-1-i``'s box ``(yl, yh, xl, xh)`` into image ``i``."""
    yl, yh, xl, xh = box
    images[:, yl:yh, xl:xh] = images[::-1, yl:yh, xl:xh].copy()   # copy: source and target overlap
    return images


def mixup_cutmix(images: np.ndarray, targets: np.ndarray, num_classes: int, cfg: MixupConfig,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Apply timm batch-mode mixup or cutmix to a float32 NHWC batch (in place) and its int targets.

    Returns ``(images, targets)`` where targets stay the (N,) int64 input when the batch is not mixed
    (``prob`` not met or mixing disabled), and become (N, num_classes) float32 soft targets when it is.
    """
    lam, use_cutmix = mix_params(cfg, rng)
    if lam == 1.0:
        return images, targets
    if use_cutmix:
        box, lam = cutmix_box(images.shape[1], images.shape[2], lam, rng)
        cutmix_images(images, box)
    else:
        mixup_images(images, lam)
    return images, mix_targets(targets, num_classes, lam)
