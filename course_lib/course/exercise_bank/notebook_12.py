"""Notebook 12 (conditional GANs): the label maps a cGAN discriminator takes beside the image.

The student's `my_label_maps(images, labels)` is compared through the discriminator: its output is fed to a
fixed cGAN discriminator and the features are compared with those of course_lib's own conditioning.
"""

import functools

import torch

from course_lib.course.exercise_bank import Exercise, register
from course_lib.nn.models import DCGANDiscriminator


@functools.cache
def _discriminator():
    torch.manual_seed(0)
    return DCGANDiscriminator(image_size=28, channels=1, width=8, n_classes=10).eval()


def _through_discriminator(label_maps):
    """The discriminator's features computed from the input `label_maps` builds."""

    def features(images, labels):
        x = label_maps(images, labels)
        if tuple(x.shape) != (len(images), 11, 28, 28):
            raise ValueError(
                f"the input has shape {tuple(x.shape)}; the cGAN discriminator expects "
                f"({len(images)}, 1 + 10, 28, 28): the image channel, then one constant map per class"
            )
        with torch.no_grad():
            return _discriminator().features(x).flatten(1)

    features.__wrapped__ = label_maps  # the student's function: its argument names describe the cases
    return features


def _conditioned_by_course_lib(images, labels):
    with torch.no_grad():
        return _discriminator().forward_all(images, labels)["features"]


def _maps_first(images, labels):
    maps = torch.nn.functional.one_hot(labels, 10).float()[:, :, None, None].expand(-1, -1, 28, 28)
    return torch.cat([maps, images], dim=1)


def _cases():
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)) for n in (1, 4, 16)]


def _maps_not_expanded(exc, args, kwargs):
    return isinstance(exc, RuntimeError) and "Sizes of tensors must match" in str(exc)


register(
    Exercise(
        name="my_label_maps",
        notebook="12_conditional_gans",
        reference=_conditioned_by_course_lib,
        cases=_cases,
        adapt=_through_discriminator,
        mistakes={
            "put the image channel first and the ten label maps after it (torch.cat([images, maps], dim=1))": (
                _through_discriminator(_maps_first)
            )
        },
        error_hints={
            "each label becomes ten constant maps of the image's size: expand the (N, 10) one-hot labels to "
            "(N, 10, H, W), e.g. one_hot[:, :, None, None].expand(-1, -1, H, W), before concatenating": (
                _maps_not_expanded
            )
        },
        rtol=1e-4,
        atol=1e-6,
        fallback="the cGAN discriminator's own conditioning",
    )
)
