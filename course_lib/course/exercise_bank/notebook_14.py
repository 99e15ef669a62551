"""Notebook 14 (StyleGAN and progressive growing): a modulated convolution, style mixing."""

import functools

import torch

from course_lib.course.exercise_bank import Exercise, register
from course_lib.nn.style import ModulatedConv2d, StyleGenerator


def _library_modulated_conv(x, weight, style, demodulate=True):
    # course_lib's layer, with its style affine map A set to the identity so that A(style) = style
    layer = ModulatedConv2d(weight.shape[1], weight.shape[0], 3, w_dim=weight.shape[1], demodulate=demodulate)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.affine.weight.copy_(torch.eye(weight.shape[1]))
        layer.affine.bias.zero_()
        return layer(x, style)


def _per_sample_conv(x, weight, style, normalise):
    outputs = []
    for i in range(x.shape[0]):
        w = weight * style[i][None, :, None, None]
        outputs.append(torch.nn.functional.conv2d(x[i : i + 1], normalise(w), padding=1))
    return torch.cat(outputs)


def _unit_norm_outputs(w):
    return w / torch.sqrt(w.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)


def _conv_cases():
    g = torch.Generator().manual_seed(0)
    return [
        (
            torch.randn(2, 3, 5, 5, generator=g),
            torch.randn(4, 3, 3, 3, generator=g),
            torch.rand(2, 3, generator=g) + 0.5,
        ),
        (
            torch.randn(3, 2, 4, 4, generator=g),
            torch.randn(2, 2, 3, 3, generator=g),
            torch.rand(3, 2, generator=g) + 0.5,
            False,
        ),
    ]


register(
    Exercise(
        name="my_modulated_conv",
        notebook="14_stylegan_and_progressive",
        reference=_library_modulated_conv,
        cases=_conv_cases,
        mistakes={
            "with demodulate=True each output channel's modulated weights are divided by their norm "
            "sqrt(sum over in-channels and kernel of w² + 1e-8); you left that out": (
                lambda x, weight, style, demodulate=True: (
                    _per_sample_conv(x, weight, style, lambda w: w) if demodulate else None
                )
            ),
            "with demodulate=False the weights are only modulated, not normalised": (
                lambda x, weight, style, demodulate=True: (
                    None if demodulate else _per_sample_conv(x, weight, style, _unit_norm_outputs)
                )
            ),
            "demodulation normalises each *output* channel: sum w² over dims (1, 2, 3) (in-channels and kernel), "
            "one norm per output channel": lambda x, weight, style, demodulate=True: _per_sample_conv(
                x,
                weight,
                style,
                lambda w: w / torch.sqrt(w.pow(2).sum(dim=(0, 2, 3), keepdim=True) + 1e-8) if demodulate else w,
            ),
        },
        rtol=1e-4,
        atol=1e-5,
        fallback="course_lib.nn.style.ModulatedConv2d",
    )
)


@functools.cache
def _style_generator():
    torch.manual_seed(0)
    return StyleGenerator(latent_dim=16, width=4)


def _mix_cases():
    G = _style_generator()
    g = torch.Generator().manual_seed(1)
    w_a, w_b = torch.randn(3, G.w_dim, generator=g), torch.randn(3, G.w_dim, generator=g)
    return [(w_a, w_b, k, G.num_ws) for k in (0, 2, 5, 6)]


register(
    Exercise(
        name="my_mix",
        notebook="14_stylegan_and_progressive",
        reference=lambda w1, w2, k, n: _style_generator().mix(w1, w2, k),
        cases=_mix_cases,
        mistakes={
            "style inputs 0 .. crossover-1 come from w1 (coarse layers), the rest from w2": lambda w1, w2, k, n: (
                _style_generator().mix(w2, w1, k)
            ),
            "w1 fills the first `crossover` style inputs, 0 .. crossover-1: that is ws[:, :crossover], crossover "
            "itself comes from w2": lambda w1, w2, k, n: _style_generator().mix(w1, w2, k + 1),
        },
        fallback="StyleGenerator.mix",
    )
)
