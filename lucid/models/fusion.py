"""Which InceptionNeXt modules ``lucid.nn.fuse`` swaps for which fused modules (lucid/nn/fused.py).

The model file (inception_next.py) stays plain; this table is the only place that knows both:

    InceptionDWConv2d  -> FusedDepthwiseBranches  (branches dwconv_hw, dwconv_w, dwconv_h)
    ConvMlp            -> FusedConvMlp
    MetaNeXtBlock      -> FusedMetaFormerBlock     (inference=True: BatchNorm + gamma folded into the MLP)
    stem / downsample  -> FusedConvNorm            (the generic Sequential(conv, bn) rule, inference only)
"""
from __future__ import annotations

from ..nn.fuse import register_fusion
from ..nn.fused import FusedConvMlp, FusedDepthwiseBranches, FusedMetaFormerBlock
from .inception_next import ConvMlp, InceptionDWConv2d, MetaNeXtBlock

register_fusion(InceptionDWConv2d, lambda m, inference: FusedDepthwiseBranches.from_module(
    m, ("dwconv_hw", "dwconv_w", "dwconv_h")))
register_fusion(ConvMlp, lambda m, inference: FusedConvMlp.from_module(m))
register_fusion(MetaNeXtBlock, lambda m, inference: FusedMetaFormerBlock.from_module(m, inference))
