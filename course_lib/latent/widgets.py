"""Sliders over a generator's latent space (ipywidgets), with the rendering in plain, testable functions.

Each control has three layers:
- a pure render function (`render_truncation`, `render_psi`, `render_interpolation`, `render_arithmetic`)
  mapping a generator, latents and a slider value to a uint8 (H, W, 3) image grid;
- a view (`TruncationView`, `InterpolationView`, `ArithmeticView`) holding the fixed latents and a cache of
  renders keyed by the slider values, whose `render(...)` is the widget's callback;
- a thin builder (`truncation_widget`, ...) wiring sliders to an `ipywidgets.Image`.

Sliders use `continuous_update=False` (one render when the handle is released, not one per pixel
dragged) and renders are cached, so moving back to a value already seen costs nothing even on a CPU.
Each control has a status line that reads "computing ..." while a render runs. The kernel handles a slider's
message only between cells, so while another cell runs nothing redraws; the idle status line says so.

After a kernel restart the controls stay on screen with nothing behind them. ipywidgets' JupyterLab front end marks
that: on a restart it sets every widget model's `comm_live` to false, and each view of such a model gets the CSS class
`jupyter-widgets-disconnected` (its own sign is a small red broken-chain icon). Every control here carries a note
(`restart_note()`, `with_restart_note(widget)` for other widgets, e.g. `ipywidgets.interactive`) that stylesheet rules
inside the note keep hidden while its view is live and show, in words, once that class is set: the kernel is gone, run
the cells above and this cell again. tests/test_browser.py restarts a kernel in JupyterLab and checks the note shows.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.core.plots import image_grid
from course_lib.latent import apply_direction, lerp, slerp, truncate_psi, truncated_from_uniform
from course_lib.latent.pretrained import generate_uint8

CACHE_SIZE = 256
# The note a control shows once the kernel behind it is gone (see the module docstring).
# ipywidgets marks a view disconnected also where no kernel ever runs it (a saved copy, the course's static site),
# so the note says so too.
KERNEL_GONE_NOTE = (
    "No kernel is running this control (the kernel restarted or stopped, or this is a saved copy), so it does not "
    "redraw. In the notebook: run the cells above (Run > Run All Above), then this cell again."
)
KERNEL_GONE_CLASS = "course-lib-kernel-gone"
# Hidden while the widget is live; shown inside any view that ipywidgets marks disconnected. The rules travel with the
# note (an HTML widget's value is set as the view's inner HTML, so a <style> in it applies), so no extension is needed.
_KERNEL_GONE_HTML = (
    f"<style>.{KERNEL_GONE_CLASS} {{display: none}} "
    f".jupyter-widgets-disconnected .{KERNEL_GONE_CLASS} {{display: block; padding: 4px 8px; margin: 2px 0; "
    f"border-left: 4px solid #d9534f; background: #fdf2f2; color: #8a1f1b; font-weight: bold}}</style>"
    f'<div class="{KERNEL_GONE_CLASS}">{KERNEL_GONE_NOTE}</div>'
)
# Shown under every control while idle: the kernel handles a slider only between cells, and after a kernel
# restart the sliders stay on screen but nothing answers them any more (issue 29).
IDLE_STATUS = (
    "release the slider to redraw (waits while another cell runs; after a kernel restart, run this cell again)"
)


# --------------------------------------------------------------------------------------- rendering
def render_latents(generator: nn.Module, z: torch.Tensor, nrow: int | None = None) -> np.ndarray:
    """uint8 (H, W, 3) grid of the generator's images (eval mode) for latents z."""
    return image_grid(generate_uint8(generator, z), nrow)


def truncation_latents(u: torch.Tensor, tau: float) -> torch.Tensor:
    """Latents truncated to [-tau, tau] from fixed uniforms u (inverse CDF): each moves continuously with tau."""
    return truncated_from_uniform(u.double(), float(tau)).float()


def render_truncation(generator: nn.Module, u: torch.Tensor, tau: float, nrow: int | None = None) -> np.ndarray:
    """Grid of G(z) for z ~ N(0, I) truncated at tau, z drawn from the fixed uniforms u (same samples for every tau)."""
    return render_latents(generator, truncation_latents(u, tau), nrow)


def render_psi(generator: nn.Module, z: torch.Tensor, psi: float, nrow: int | None = None) -> np.ndarray:
    """Grid of G(psi z): StyleGAN-style truncation of fixed latents towards the mean 0."""
    return render_latents(generator, truncate_psi(z, psi), nrow)


def interpolation_point(z0: torch.Tensor, z1: torch.Tensor, t: float, method: str = "slerp") -> torch.Tensor:
    """The latent at position t in [0, 1] of the lerp or slerp path from z0 to z1, shape (1, d)."""
    if method not in ("lerp", "slerp"):
        raise ConfigError(f"unknown interpolation {method!r}; choose 'lerp' or 'slerp'")
    return (lerp if method == "lerp" else slerp)(z0, z1, float(t))


def render_interpolation(
    generator: nn.Module, z0: torch.Tensor, z1: torch.Tensor, t: float, method: str = "slerp"
) -> np.ndarray:
    """Row of three images: G(z0), G(z(t)), G(z1), the middle one at position t of the path."""
    z = torch.cat([z0.reshape(1, -1), interpolation_point(z0, z1, t, method), z1.reshape(1, -1)])
    return render_latents(generator, z, nrow=3)


def render_arithmetic(
    generator: nn.Module, z: torch.Tensor, direction: torch.Tensor, alpha: float, nrow: int | None = None
) -> np.ndarray:
    """Grid of G(z + alpha * direction) for fixed latents z."""
    return render_latents(generator, apply_direction(z, direction, alpha), nrow)


def to_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) array, for ipywidgets.Image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------- views
class RenderCache:
    """Least-recently-used store of renders keyed by slider values (floats rounded to 4 decimals)."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size, self.store, self.hits, self.misses = size, OrderedDict(), 0, 0

    def get(self, key, compute):
        key = tuple(round(k, 4) if isinstance(k, float) else k for k in key)
        if key in self.store:
            self.hits += 1
            self.store.move_to_end(key)
            return self.store[key]
        self.misses += 1
        value = self.store[key] = compute()
        if len(self.store) > self.size:
            self.store.popitem(last=False)
        return value


def _latent_dim(generator: nn.Module) -> int:
    if not hasattr(generator, "latent_dim"):
        raise ConfigError("the generator needs a `latent_dim` attribute (course_lib's generators have one)")
    return int(generator.latent_dim)


class TruncationView:
    """A fixed grid of n samples under truncation: mode 'tau' (resampling form, via fixed uniforms) or 'psi'."""

    def __init__(self, generator: nn.Module, n: int = 16, seed: int = 0, mode: str = "tau"):
        if mode not in ("tau", "psi"):
            raise ConfigError(f"truncation mode must be 'tau' or 'psi', got {mode!r}")
        self.generator, self.mode, self.cache = generator, mode, RenderCache()
        rng = torch.Generator().manual_seed(seed)
        self.u = torch.rand(n, _latent_dim(generator), generator=rng, dtype=torch.float64)
        self.z = torch.special.ndtri(self.u).float()  # the untruncated latents the same uniforms give

    def latents(self, value: float) -> torch.Tensor:
        return truncation_latents(self.u, value) if self.mode == "tau" else truncate_psi(self.z, value)

    def render(self, value: float) -> np.ndarray:
        return self.cache.get((float(value),), lambda: render_latents(self.generator, self.latents(value)))


class InterpolationView:
    """The path between two latents (given, or drawn from `seed`); `new_endpoints()` draws another pair."""

    def __init__(
        self, generator: nn.Module, z0: torch.Tensor | None = None, z1: torch.Tensor | None = None, seed: int = 0
    ):
        self.generator, self.cache = generator, RenderCache()
        self.rng = torch.Generator().manual_seed(seed)
        d = _latent_dim(generator)
        self.z0 = torch.randn(d, generator=self.rng) if z0 is None else z0.reshape(-1).float()
        self.z1 = torch.randn(d, generator=self.rng) if z1 is None else z1.reshape(-1).float()

    def new_endpoints(self) -> None:
        d = len(self.z0)
        self.z0, self.z1 = torch.randn(d, generator=self.rng), torch.randn(d, generator=self.rng)
        self.cache = RenderCache()

    def norm(self, t: float, method: str) -> float:
        return float(interpolation_point(self.z0, self.z1, t, method).norm())

    def render(self, t: float, method: str = "slerp") -> np.ndarray:
        return self.cache.get(
            (float(t), method), lambda: render_interpolation(self.generator, self.z0, self.z1, t, method)
        )


class ArithmeticView:
    """Fixed latents z moved along named directions: render(name, alpha) shows G(z + alpha * direction)."""

    def __init__(self, generator: nn.Module, z: torch.Tensor, directions: dict[str, torch.Tensor]):
        if not directions:
            raise ConfigError("latent arithmetic needs at least one direction, e.g. {'3 -> 8': class_direction(...)}")
        self.generator, self.z, self.directions, self.cache = generator, z.float(), dict(directions), RenderCache()

    def render(self, name: str, alpha: float) -> np.ndarray:
        if name not in self.directions:
            raise ConfigError(f"unknown direction {name!r}; known: {', '.join(self.directions)}")
        return self.cache.get(
            (name, float(alpha)), lambda: render_arithmetic(self.generator, self.z, self.directions[name], alpha)
        )


# ---------------------------------------------------------------------------------------- widgets
@dataclass
class LatentControl:
    """A built control: the view (its callbacks), the widget to display, and its parts by name."""

    view: object
    widget: object
    parts: dict = field(default_factory=dict)

    def _repr_mimebundle_(self, **kwargs):  # displays as the widget in Jupyter
        return self.widget._repr_mimebundle_(**kwargs)


def restart_note():
    """An HTML widget, empty to the eye while its kernel runs, that says KERNEL_GONE_NOTE once the kernel is gone."""
    import ipywidgets as w

    return w.HTML(value=_KERNEL_GONE_HTML)


def with_restart_note(widget):
    """`widget` under a restart note (a VBox of the two): for controls built elsewhere, e.g. ipywidgets.interactive."""
    import ipywidgets as w

    return w.VBox([restart_note(), widget])


def _image_widget(image: np.ndarray, zoom: int):
    import ipywidgets as w

    return w.Image(value=to_png(image), format="png", width=image.shape[1] * zoom)


def _status_widget():
    import ipywidgets as w

    return w.Label(value=IDLE_STATUS, layout=w.Layout(width="auto"))


def _redraw(status, what: str, draw) -> None:
    """Run draw() with the status line saying "computing <what> ..." meanwhile; restored afterwards, also on error.

    The label's new value reaches the browser at once (a widget update is sent when it is set), so the student
    sees it for the whole render."""
    status.value = f"computing {what} ..."
    try:
        draw()
    finally:
        status.value = IDLE_STATUS


def truncation_widget(
    generator: nn.Module, n: int = 16, seed: int = 0, mode: str = "tau", zoom: int = 3
) -> LatentControl:
    """A slider over tau (0.05..3, resampling form) or psi (0..1, scaling form) above a fixed grid of n samples."""
    import ipywidgets as w

    view = TruncationView(generator, n, seed, mode)
    if mode == "tau":
        slider = w.FloatSlider(value=3.0, min=0.05, max=3.0, step=0.05, description="tau", continuous_update=False)
    else:
        slider = w.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="psi", continuous_update=False)
    image, status = _image_widget(view.render(slider.value), zoom), _status_widget()

    def update(change):
        def draw():
            image.value = to_png(view.render(change["new"]))

        _redraw(status, f"{mode} = {change['new']:.2f}", draw)

    slider.observe(update, names="value")
    note = restart_note()
    return LatentControl(
        view,
        w.VBox([note, w.HBox([slider, status]), image]),
        {"slider": slider, "image": image, "status": status, "note": note},
    )


def interpolation_widget(
    generator: nn.Module, z0: torch.Tensor | None = None, z1: torch.Tensor | None = None, seed: int = 0, zoom: int = 3
) -> LatentControl:
    """Slider t in [0, 1] along the path z0 -> z1, a lerp/slerp toggle, and a button for new random endpoints."""
    import ipywidgets as w

    view = InterpolationView(generator, z0, z1, seed)
    slider = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="t", continuous_update=False)
    method = w.ToggleButtons(options=["lerp", "slerp"], value="slerp", description="path")
    # width "auto": the default button width (about 150 px) cuts the label off
    button = w.Button(description="new random endpoints", layout=w.Layout(width="auto"))
    label, status = w.Label(), _status_widget()
    image = _image_widget(view.render(slider.value, method.value), zoom)

    def draw():
        image.value = to_png(view.render(slider.value, method.value))
        label.value = (
            f"||z(t)|| = {view.norm(slider.value, method.value):.2f}   "
            f"(||z0|| = {float(view.z0.norm()):.2f}, ||z1|| = {float(view.z1.norm()):.2f})"
        )

    def update(_=None):
        _redraw(status, f"t = {slider.value:.2f} ({method.value})", draw)

    def new_pair(_):
        def draw_new():
            view.new_endpoints()
            draw()

        _redraw(status, "new endpoints", draw_new)

    slider.observe(update, names="value")
    method.observe(update, names="value")
    button.on_click(new_pair)
    draw()
    note = restart_note()
    return LatentControl(
        view,
        w.VBox([note, w.HBox([slider, method]), w.HBox([button, status]), image, label]),
        {
            "slider": slider,
            "method": method,
            "button": button,
            "image": image,
            "label": label,
            "status": status,
            "note": note,
        },
    )


def arithmetic_widget(
    generator: nn.Module, z: torch.Tensor, directions: dict[str, torch.Tensor], zoom: int = 3, max_alpha: float = 3.0
) -> LatentControl:
    """A direction menu and a strength slider alpha in [-max_alpha, max_alpha] over the grid G(z + alpha d)."""
    import ipywidgets as w

    view = ArithmeticView(generator, z, directions)
    menu = w.Dropdown(options=list(view.directions), description="direction")
    slider = w.FloatSlider(
        value=0.0, min=-max_alpha, max=max_alpha, step=0.1, description="alpha", continuous_update=False
    )
    image, status = _image_widget(view.render(menu.value, slider.value), zoom), _status_widget()

    def update(_=None):
        def draw():
            image.value = to_png(view.render(menu.value, slider.value))

        _redraw(status, f"alpha = {slider.value:+.1f} along {menu.value!r}", draw)

    menu.observe(update, names="value")
    slider.observe(update, names="value")
    note = restart_note()
    return LatentControl(
        view,
        w.VBox([note, w.HBox([menu, slider]), status, image]),
        {"menu": menu, "slider": slider, "image": image, "status": status, "note": note},
    )
