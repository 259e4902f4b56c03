"""Vision encoders: images (T, 3, S, S) -> patch tokens (T, h*w, C), class token dropped.

Every encoder exposes ``out_dim`` (C), ``grid`` ((h, w) patches per image) and
``image_size`` (S), which the graph uses to size the projector and lay out tokens.
"""
