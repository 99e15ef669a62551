"""Notebook 06 (DCGAN on MNIST): the output size of a transposed convolution, measured on torch's layer."""

import torch

from course_lib.course.exercise_bank import Exercise, register


def _measured_size(size, kernel, stride, padding):
    layer = torch.nn.ConvTranspose2d(1, 1, kernel, stride, padding)
    return int(layer(torch.zeros(1, 1, size, size)).shape[-1])


register(
    Exercise(
        name="my_transposed_size",
        notebook="06_dcgan_mnist",
        reference=_measured_size,
        cases=lambda: [(7, 4, 2, 1), (14, 4, 2, 1), (1, 7, 1, 0), (4, 4, 2, 1), (5, 3, 3, 2), (3, 5, 1, 2)],
        mistakes={
            "that is the size an ordinary (down-sampling) convolution gives; a transposed convolution goes the "
            "other way": lambda size, kernel, stride, padding: (size + 2 * padding - kernel) // stride + 1,
            "padding is cropped from both borders: subtract 2 * padding": lambda size, kernel, stride, padding: (
                (size - 1) * stride - padding + kernel
            ),
            "the input pixels are spread `stride` apart: (size - 1) * stride, not size * stride": (
                lambda size, kernel, stride, padding: size * stride - 2 * padding + kernel
            ),
        },
        fallback="torch.nn.ConvTranspose2d",
    )
)
