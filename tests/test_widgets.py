"""course_lib.latent.widgets: the callbacks give the right images for given slider values, and the widgets wire them up."""

import numpy as np
import pytest
import torch
from scipy import special

from course_lib.core.errors import ConfigError
from course_lib.core.images import to_uint8
from course_lib.core.plots import image_grid
from course_lib.latent import class_direction
from course_lib.latent.pretrained import classify_digits, generate_uint8, load_pretrained
from course_lib.latent.widgets import (
    IDLE_STATUS,
    ArithmeticView,
    InterpolationView,
    TruncationView,
    arithmetic_widget,
    interpolation_widget,
    render_truncation,
    to_png,
    truncation_widget,
)


@pytest.fixture(scope="module")
def generator():
    return load_pretrained("mnist-dcgan")


def tiles(grid: np.ndarray, n: int, nrow: int | None = None, size: int = 28, pad: int = 2) -> list[np.ndarray]:
    """Cut an image_grid back into its tiles (row-major), independently of how it was made."""
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    out = []
    for i in range(n):
        r, c = divmod(i, nrow)
        y, x = pad + r * (size + pad), pad + c * (size + pad)
        out.append(grid[y : y + size, x : x + size])
    return out


def expected_images(generator, z: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        images = to_uint8(generator(z)).numpy()  # (N, 1, 28, 28)
    return [np.repeat(im[0][:, :, None], 3, axis=2) for im in images]


@pytest.mark.parametrize("tau", [0.1, 1.0, 2.5])
def test_truncation_view_renders_the_truncated_latents(generator, tau):
    view = TruncationView(generator, n=9, seed=4, mode="tau")
    u = view.u.numpy()
    lo = special.ndtr(-tau)
    z_scipy = special.ndtri(lo + u * (special.ndtr(tau) - lo))  # the truncated normal's inverse CDF, by scipy
    z = view.latents(tau)
    assert np.allclose(z.numpy(), z_scipy, atol=1e-5) and z.abs().max() <= tau
    grid = view.render(tau)
    assert grid.dtype == np.uint8 and grid.shape == (2 + 3 * 30, 2 + 3 * 30, 3)
    for got, want in zip(tiles(grid, 9), expected_images(generator, z)):
        assert np.array_equal(got, want)
    assert np.array_equal(grid, render_truncation(generator, view.u, tau))


def test_truncation_narrows_the_grid(generator):
    """A smaller tau gives less varied samples: mean pixel distance between tiles drops."""
    view = TruncationView(generator, n=16, seed=0)

    def spread(grid):
        t = np.stack(tiles(grid, 16)).astype(float).reshape(16, -1)
        return np.mean([np.abs(a - b).mean() for i, a in enumerate(t) for b in t[i + 1 :]])

    assert spread(view.render(0.1)) < 0.6 * spread(view.render(3.0))


def test_psi_view_goes_from_the_samples_to_the_mean_image(generator):
    view = TruncationView(generator, n=4, seed=1, mode="psi")
    at_zero = tiles(view.render(0.0), 4)
    assert all(np.array_equal(t, at_zero[0]) for t in at_zero)  # every latent scaled to 0: G(0) four times
    assert np.array_equal(at_zero[0], expected_images(generator, torch.zeros(1, 100))[0])
    full = tiles(view.render(1.0), 4)
    for got, want in zip(full, expected_images(generator, torch.special.ndtri(view.u).float())):
        assert np.array_equal(got, want)


def test_interpolation_view_endpoints_and_midpoint(generator):
    view = InterpolationView(generator, seed=2)
    for method in ("lerp", "slerp"):
        left, middle, right = tiles(view.render(0.0, method), 3, nrow=3)
        assert np.array_equal(left, middle)
        left, middle, right = tiles(view.render(1.0, method), 3, nrow=3)
        assert np.array_equal(right, middle)
    mid_lerp = tiles(view.render(0.5, "lerp"), 3, nrow=3)[1]
    assert np.array_equal(mid_lerp, expected_images(generator, ((view.z0 + view.z1) / 2)[None])[0])
    assert not np.array_equal(mid_lerp, tiles(view.render(0.5, "slerp"), 3, nrow=3)[1])
    assert view.norm(0.5, "lerp") < view.norm(0.5, "slerp")
    with pytest.raises(ConfigError):
        view.render(0.5, "cubic")


def test_arithmetic_view_moves_digits_towards_the_target_class(generator):
    """The class-mean direction 'label a -> b', added to latents of a's, turns most of them into b's (measured)."""
    z = torch.randn(2000, 100, generator=torch.Generator().manual_seed(0))
    labels, confidence = classify_digits(generate_uint8(generator, z))
    labels[confidence < 0.9] = -1  # only confidently labelled samples define the class means
    source, target = 1, 7
    direction = class_direction(z, labels, source, target)
    ones = z[labels == source][:16]
    view = ArithmeticView(generator, ones, {"1 -> 7": direction})
    assert np.array_equal(view.render("1 -> 7", 0.0), image_grid(generate_uint8(generator, ones)))
    moved = torch.stack([torch.from_numpy(t[:, :, 0]) for t in tiles(view.render("1 -> 7", 1.0), 16)])[:, None]
    predicted, _ = classify_digits(moved)
    assert (predicted == target).double().mean() >= 0.5, predicted
    with pytest.raises(ConfigError):
        view.render("2 -> 3", 1.0)


def test_renders_are_cached_by_slider_value(generator):
    view = TruncationView(generator, n=4)
    first = view.render(1.0)
    assert view.render(1.00001) is first and view.cache.hits == 1 and view.cache.misses == 1


def test_truncation_widget_updates_its_image(generator):
    control = truncation_widget(generator, n=4, seed=0)
    slider, image = control.parts["slider"], control.parts["image"]
    assert slider.continuous_update is False
    slider.value = 0.5
    assert image.value == to_png(control.view.render(0.5))
    psi = truncation_widget(generator, n=4, mode="psi")
    psi.parts["slider"].value = 0.0
    assert psi.parts["image"].value == to_png(psi.view.render(0.0))
    assert "application/vnd.jupyter.widget-view+json" in control._repr_mimebundle_()


def test_interpolation_widget_toggle_and_new_endpoints(generator):
    control = interpolation_widget(generator, seed=0)
    parts = control.parts
    assert parts["slider"].continuous_update is False
    parts["method"].value = "lerp"
    parts["slider"].value = 0.25
    assert parts["image"].value == to_png(control.view.render(0.25, "lerp"))
    assert parts["label"].value.startswith(f"||z(t)|| = {control.view.norm(0.25, 'lerp'):.2f}")
    before = control.view.z0.clone()
    parts["button"].click()
    assert not torch.equal(before, control.view.z0)
    assert parts["image"].value == to_png(control.view.render(0.25, "lerp"))


def test_arithmetic_widget(generator):
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(1))
    directions = {"up": torch.ones(100) * 0.1, "down": -torch.ones(100) * 0.1}
    control = arithmetic_widget(generator, z, directions)
    control.parts["menu"].value = "down"
    control.parts["slider"].value = 2.0
    rendered = control.view.render("down", 2.0)
    assert control.parts["image"].value == to_png(rendered)
    assert np.array_equal(rendered, image_grid(generate_uint8(generator, z - 0.2)))
    with pytest.raises(ConfigError):
        arithmetic_widget(generator, z, {})


def watch_status(control, view_method="render"):
    """Record the status line's text at the moment each render starts (what the student sees meanwhile)."""
    seen, render = [], getattr(control.view, view_method)

    def recording(*args):
        seen.append(control.parts["status"].value)
        return render(*args)

    setattr(control.view, view_method, recording)
    return seen


def test_status_line_says_computing_during_a_render_and_is_restored_after(generator):
    control = truncation_widget(generator, n=4, seed=0)
    assert control.parts["status"].value == IDLE_STATUS
    seen = watch_status(control)
    control.parts["slider"].value = 0.5
    assert seen == ["computing tau = 0.50 ..."] and control.parts["status"].value == IDLE_STATUS

    control = interpolation_widget(generator, seed=0)
    seen = watch_status(control)
    control.parts["slider"].value = 0.25
    control.parts["button"].click()
    assert seen == ["computing t = 0.25 (slerp) ...", "computing new endpoints ..."]
    assert control.parts["status"].value == IDLE_STATUS

    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(1))
    control = arithmetic_widget(generator, z, {"up": torch.ones(100) * 0.1})
    seen = watch_status(control)
    control.parts["slider"].value = -1.5
    assert seen == ["computing alpha = -1.5 along 'up' ..."] and control.parts["status"].value == IDLE_STATUS


def test_status_line_is_restored_when_a_render_fails(generator):
    control = truncation_widget(generator, n=4, mode="psi")

    def broken(value):
        raise RuntimeError("out of memory")

    control.view.render = broken
    with pytest.raises(RuntimeError):
        control.parts["slider"].value = 0.3
    assert control.parts["status"].value == IDLE_STATUS


def test_the_endpoints_button_is_wide_enough_for_its_label(generator):
    """The default button width (about 150 px) cut "new random endpoints" off; tests/test_browser.py measures it."""
    button = interpolation_widget(generator, seed=0).parts["button"]
    assert button.description == "new random endpoints" and button.layout.width == "auto"
