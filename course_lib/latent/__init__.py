"""Latent-space tools (truncation, interpolation, directions, inversion), shipped generators, widgets."""
from course_lib.latent.space import (
    rejected_fraction,
    truncated_normal,
    truncated_from_uniform,
    truncated_on_shell,
    truncate_psi,
    sample_latents,
    lerp,
    slerp,
    interpolate,
    attribute_direction,
    class_means,
    class_direction,
    apply_direction,
    read_celeba_attributes,
    Inversion,
    invert,
    RULES,
)

__all__ = ['rejected_fraction', 'truncated_normal', 'truncated_from_uniform', 'truncated_on_shell', 'truncate_psi', 'sample_latents', 'lerp', 'slerp', 'interpolate', 'attribute_direction', 'class_means', 'class_direction', 'apply_direction', 'read_celeba_attributes', 'Inversion', 'invert', 'RULES']
