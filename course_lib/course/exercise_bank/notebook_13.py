"""Notebook 13 (image translation): the PatchGAN's receptive field, CycleGAN's cycle-consistency loss."""

import torch

from course_lib.course.exercise_bank import Exercise, register
from course_lib.nn.translation import patch_receptive_field
from course_lib.training.context import StepContext
from course_lib.training.terms import CycleConsistency, StepBatch


def _field_for(strides_from_output):  # 4x4 kernels: r <- stride r + (4 - stride), output layer first
    r = 1
    for stride in strides_from_output:
        r = stride * r + (4 - stride)
    return r


register(
    Exercise(
        name="my_receptive_field",
        notebook="13_image_translation",
        reference=patch_receptive_field,
        cases=lambda: [(n,) for n in (0, 1, 2, 3)],
        mistakes={
            "go backwards from the output: the two stride-1 layers come first, then the stride-2 ones": (
                lambda layers: _field_for([2] * layers + [1, 1])
            ),
            "the PatchGAN also has two stride-1 layers after its `layers` stride-2 ones: count them too": (
                lambda layers: _field_for([2] * layers)
            ),
        },
        fallback="course_lib.nn.translation.patch_receptive_field",
    )
)


def _course_lib_cycle_loss(generator, domains):
    fakes = generator(domains)
    batch = StepBatch(domains, None, fakes, None, domains, {}, {})
    context = StepContext(forward_g=generator)  # what the term reads of a run: G's training forward pass
    return CycleConsistency(weight=1.0).generator_loss(batch, context)


def _swap_halves(x):  # a toy "[F(b); G(a)]": each half moved to the other place and changed
    return torch.cat([x[len(x) // 2 :] * 0.5, x[: len(x) // 2] - 0.25])


def _cycle_cases():
    gen = torch.Generator().manual_seed(0)
    return [(_swap_halves, torch.randn(n, 1, 28, 28, generator=gen)) for n in (2, 8)]


register(
    Exercise(
        name="my_cycle_loss",
        notebook="13_image_translation",
        reference=_course_lib_cycle_loss,
        cases=_cycle_cases,
        mistakes={
            "translate twice: a single pass gives [F(b); G(a)], which is in the other domain": lambda g, x: (
                (g(x) - x).abs().mean()
            ),
            "this is the squared error; CycleGAN's cycle term is the L1 (absolute) error": lambda g, x: (
                (g(g(x)) - x).pow(2).mean()
            ),
        },
        rtol=1e-5,
        fallback="course_lib.training.terms.CycleConsistency",
    )
)
