"""Perceptual path length (course_lib.metrics.ppl) against independent references:

- torch-fidelity's PPL (a test dependency) on the same generator, with the same latents and the same
  sample distance registered in torch-fidelity (`register_sample_similarity`; its default LPIPS-VGG
  weights cannot be downloaded here). torch-fidelity evaluates every pair at t = 0, so course_lib's
  `t=0` is compared; in W, torch-fidelity's noise source is registered as the mapped latents.
- closed forms for linear generators, where the path length is analytic.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.metrics import MetricInputError, perceptual_path_length
from course_lib.metrics.ppl import feature_distance, slerp
from course_lib.nn.style import StyleGenerator

torch_fidelity = pytest.importorskip("torch_fidelity")
from torch_fidelity.generative_model_modulewrapper import GenerativeModelModuleWrapper  # noqa: E402
from torch_fidelity.registry import (  # noqa: E402
    NOISE_SOURCE_REGISTRY,
    SAMPLE_SIMILARITY_REGISTRY,
    register_noise_source,
    register_sample_similarity,
)
from torch_fidelity.sample_similarity_base import SampleSimilarityBase  # noqa: E402

LATENT, N, SEED = 8, 60, 5


class PixelL2(SampleSimilarityBase):
    """torch-fidelity's view of course_lib's 'l2' distance (mean squared pixel difference)."""

    def __init__(self, name, **kwargs):
        super().__init__(name)
        self.distance = feature_distance("l2")

    def forward(self, a, b):
        return self.distance(a, b)


class Synthesis(nn.Module):
    """w -> image with fixed noise: what course_lib's PPL in W evaluates."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, w):
        return self.generator.synthesis(w, noise_mode="const")


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    g = StyleGenerator(latent_dim=LATENT, width=4, mapping_layers=2).eval()
    with torch.no_grad():  # let the noise inputs matter, as in a trained generator
        for layer in g.layers:
            layer.noise_strength.fill_(0.3)
    g.noise_mode = "const"  # torch-fidelity calls forward(z): fixed noise, as course_lib's PPL holds it
    if "course_lib_l2" not in SAMPLE_SIMILARITY_REGISTRY:
        register_sample_similarity("course_lib_l2", PixelL2)
    return g


def reference_latents():
    """The endpoints torch-fidelity draws: numpy RandomState(seed), two (N, z) normal batches."""
    rng = np.random.RandomState(SEED)
    return torch.from_numpy(rng.randn(N, LATENT)).float(), torch.from_numpy(rng.randn(N, LATENT)).float()


def fidelity_distances(module, z_type: str, interp: str) -> np.ndarray:
    """torch-fidelity's per-pair d / eps^2. Its percentile filter calls np.percentile(interpolation=...),
    which numpy 2 removed, so the raw distances are asked for and StyleGAN's filter is applied here."""
    model = GenerativeModelModuleWrapper(module, LATENT, "normal", 0)
    model._z_type = z_type  # the wrapper only accepts built-in names; calculate_ppl looks any registered one up
    out = torch_fidelity.calculate_metrics(
        input1=model,
        input1_model_num_samples=N,
        ppl=True,
        ppl_sample_similarity="course_lib_l2",
        ppl_sample_similarity_resize=None,
        ppl_sample_similarity_dtype=None,
        ppl_z_interp_mode=interp,
        ppl_epsilon=1e-4,
        rng_seed=SEED,
        cuda=False,
        verbose=False,
        batch_size=32,
        ppl_reduction="none",
        ppl_discard_percentile_lower=None,
        ppl_discard_percentile_higher=None,
    )
    return out["perceptual_path_length_raw"]


def stylegan_filtered_mean(d: np.ndarray) -> float:
    """StyleGAN's metrics/perceptual_path_length.py: keep lo <= d <= hi, lo/hi the 1st/99th percentiles."""
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    return float(d[(d >= lo) & (d <= hi)].mean())


def compare(ours, reference: np.ndarray) -> None:
    assert ours.n_samples == N
    # float32 latents: a rounding of 1e-7 against a step of 1e-4 moves single pairs by up to ~1e-3
    assert np.allclose(ours.distances, reference, rtol=2e-2), np.abs(ours.distances / reference - 1).max()
    assert math.isclose(ours.mean, stylegan_filtered_mean(reference), rel_tol=5e-3)


def test_ppl_in_z_matches_torch_fidelity(generator):
    ours = perceptual_path_length(generator, space="z", similarity="l2", t=0.0, latents=reference_latents())
    compare(ours, fidelity_distances(generator, "normal", "slerp_any"))


def test_ppl_in_w_matches_torch_fidelity(generator):
    name = "course_lib_test_mapped"
    if name not in NOISE_SOURCE_REGISTRY:  # torch-fidelity's latents, pushed through the mapping network
        register_noise_source(name, lambda rng, shape: generator.mapping(torch.from_numpy(rng.randn(*shape)).float()))
    with torch.no_grad():
        reference = fidelity_distances(Synthesis(generator), name, "lerp")
    ours = perceptual_path_length(generator, space="w", similarity="l2", t=0.0, latents=reference_latents())
    compare(ours, reference)


class Linear(nn.Module):
    """G(z) = A z as a 1x4x4 image; as a 'style' generator, mapping = identity and synthesis = A w."""

    def __init__(self, latent_dim=6, pixels=16):
        super().__init__()
        self.latent_dim = latent_dim
        self.A = nn.Parameter(torch.randn(pixels, latent_dim, generator=torch.Generator().manual_seed(1)))

    def mapping(self, z):
        return z

    def synthesis(self, w, noise_mode=None):
        return (w @ self.A.T).view(-1, 1, 4, 4)

    def forward(self, z, labels=None):
        return self.synthesis(z)


def test_ppl_in_w_of_a_linear_generator_is_the_closed_form():
    g = Linear()
    z0, z1 = torch.randn(200, 6, generator=torch.Generator().manual_seed(2)).chunk(2)
    ours = perceptual_path_length(g, space="w", similarity="l2", latents=(z0, z1), discard_percentiles=None)
    # lerp: the image moves by eps A (w1 - w0), so d / eps^2 = mean over pixels of (A (w1 - w0))^2, for any t
    exact = ((z1 - z0) @ g.A.detach().T).pow(2).mean(dim=1).double()
    assert np.allclose(ours.distances, exact.numpy(), rtol=2e-2)
    assert math.isclose(ours.mean, float(exact.mean()), rel_tol=1e-2)


def test_ppl_in_z_of_a_linear_generator_is_the_slerp_speed():
    g = Linear()
    z0, z1 = torch.randn(200, 6, generator=torch.Generator().manual_seed(3)).chunk(2)
    z1 = z1 / z1.norm(dim=1, keepdim=True) * z0.norm(dim=1, keepdim=True)  # equal norms: a great circle
    ours = perceptual_path_length(g, space="z", similarity="l2", latents=(z0, z1), t=0.0, discard_percentiles=None)
    # At t = 0 slerp moves along the unit tangent u = (z1 - cos z0 / ..) with speed omega |z0|:
    # d / eps^2 -> mean over pixels of (omega |z0| A u)^2.
    r = z0.norm(dim=1, keepdim=True)
    cos = (z0 * z1).sum(dim=1, keepdim=True) / r**2
    tangent = z1 - cos * z0
    u = tangent / tangent.norm(dim=1, keepdim=True)
    exact = ((cos.acos() * r * u) @ g.A.detach().T).pow(2).mean(dim=1).double()
    assert np.allclose(ours.distances, exact.numpy(), rtol=2e-2)


def test_slerp_stays_on_the_sphere_and_hits_the_endpoints():
    a, b = torch.randn(2, 5, generator=torch.Generator().manual_seed(4))
    a, b = a / a.norm(), b / b.norm()
    for t in (0.0, 0.3, 1.0):
        assert math.isclose(float(slerp(a[None], b[None], torch.tensor([[t]])).norm()), 1.0, rel_tol=1e-5)
    assert torch.allclose(slerp(a[None], b[None], torch.tensor([[1.0]]))[0], b, atol=1e-6)


def test_ppl_with_classifier_features_is_finite_and_seeded(generator):
    first = perceptual_path_length(generator, 8, "w", similarity="mnist", seed=1)
    again = perceptual_path_length(generator, 8, "w", similarity="mnist", seed=1)
    assert math.isfinite(first.mean) and first.mean == again.mean and "PPL(W)" in str(first)


def test_ppl_bad_inputs_are_one_line_errors(generator):
    from course_lib.nn.models import DCGANGenerator

    dcgan = DCGANGenerator(16, 28, 1, 8)
    cases = [
        (lambda: perceptual_path_length(dcgan, 4, "w"), "no intermediate latent space"),
        (lambda: perceptual_path_length(generator, 4, "x"), "space must be"),
        (lambda: perceptual_path_length(generator, 1), "n_samples"),
        (lambda: perceptual_path_length(generator, 4, epsilon=-1.0), "epsilon"),
        (lambda: perceptual_path_length(generator, latents=(torch.zeros(4, 3), torch.zeros(4, 3))), "latents"),
        (lambda: perceptual_path_length(lambda z: z, 4), "nn.Module"),
    ]
    for call, words in cases:
        with pytest.raises(MetricInputError, match=words) as info:
            call()
        assert "\n" not in str(info.value)


def test_evaluator_reports_ppl(generator):
    from course_lib.metrics import GeneratorEvaluator

    scores = GeneratorEvaluator(["ppl", "ppl_w"], extractor="pixels", n_samples=8, seed=0)(generator)
    assert scores["ppl"] > 0 and scores["ppl_w"] > 0
