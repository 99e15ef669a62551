"""Notebook 11 (the diversity controller): one interpolation step between two generator states."""

import torch

from course_lib.course.exercise_bank import Exercise, register
from course_lib.nn.models import DCGANGenerator
from course_lib.training.callbacks.diversity_controller import interpolate_states, snapshot


def _small_generator_state(seed, steps_tracked):
    torch.manual_seed(seed)
    model = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=4)
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer.normal_()
        elif name.endswith("num_batches_tracked"):
            buffer.fill_(steps_tracked)
    return snapshot(model)


def _cases():
    before, after = _small_generator_state(0, 300), _small_generator_state(1, 400)
    return [(before, after, r) for r in (0.0, 0.25, 0.5, 1.0)]


register(
    Exercise(
        name="my_interpolate_states",
        notebook="11_diversity_controller",
        reference=interpolate_states,
        cases=_cases,
        mistakes={
            "integer entries (num_batches_tracked counts training steps) are not interpolated: they keep the "
            "current value": lambda prev, cur, r: {
                k: prev[k].double() + r * (v.double() - prev[k].double()) for k, v in cur.items()
            },
            "the direction is reversed: r = 0 must give the previous state and r = 1 the current one": (
                lambda prev, cur, r: interpolate_states(prev, cur, 1 - r)
            ),
        },
        fallback="course_lib's interpolate_states",
    )
)
