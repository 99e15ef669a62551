"""One line saying how an FID-type number was computed, the way papers state it: resize mode, network weights,
how many generated samples, and which reference set (with its size).

    clean-fid clean resizing (PIL bicubic, antialiased, float); Inception-v3 (TF FID weights); 10000 generated
    samples vs 10000 images of MNIST test

Numbers computed under different protocols are not comparable (the resize alone moves FID by points), so
every report that prints an FID should print this line beside it (`MetricResult.protocol`,
`GeneratorEvaluator.protocol`).
"""

from __future__ import annotations

from .resize import DESCRIPTIONS


def input_convention(extractor) -> str:
    """How images reach the extractor: the Inception resize mode, or the extractor's own fixed input."""
    mode = getattr(extractor, "preprocessing", None)
    if getattr(extractor, "name", "") == "inception" and mode in DESCRIPTIONS:
        return DESCRIPTIONS[mode]
    if getattr(extractor, "name", "") == "mnist":
        return "MNIST classifier input (antialiased bilinear to 28x28)"
    if getattr(extractor, "name", "") == "pixels":
        return "8x8 average pooling"
    return f"{getattr(extractor, 'name', 'unknown')} extractor's own input"


def weights_text(extractor) -> str:
    """Which network and weights: the extractor's label, plus the weights file for Inception."""
    label = getattr(extractor, "label", "") or "unknown features"
    source = getattr(extractor, "weights_source", None)
    return (
        f"{label}, weights from {source}" if source and "TF FID weights" not in label and source not in label else label
    )


def protocol_text(extractor, n_generated: int | None, reference: str | None, n_reference: int | None) -> str:
    """`mode; weights; N generated samples vs M images of REFERENCE` (parts that are unknown are left out)."""
    parts = [input_convention(extractor), weights_text(extractor)] if extractor is not None else []
    sizes = []
    if n_generated:
        sizes.append(f"{n_generated} generated samples")
    if reference or n_reference:
        ref = f"{n_reference} reference images" if n_reference else "reference"
        sizes.append(f"{ref} ({reference})" if reference else ref)
    if sizes:
        parts.append(" vs ".join(sizes))
    return "; ".join(parts)


def evaluator_protocol(evaluator) -> str:
    """The protocol line of a GeneratorEvaluator: its extractor, sample count and reference."""
    reference, n_reference = None, None
    if evaluator.reference_stats is not None:
        reference, n_reference = evaluator.reference_stats.description, evaluator.reference_stats.n or None
    elif evaluator.reference_features is not None:
        reference, n_reference = evaluator.reference_features.description, len(evaluator.reference_features)
    elif evaluator.reference is not None:
        reference = str(evaluator.reference) if isinstance(evaluator.reference, str) else None
    return protocol_text(evaluator.extractor, evaluator.last_count or evaluator.n_samples, reference, n_reference)
