"""The flat config of course_lib before the sections (57 top-level fields), read into the sectioned form.

Every config.json of a run saved before the change, every checkpoint of format course_lib.checkpoint/1
and /2 (the shipped generators mnist-dcgan and celeba-dcgan among them), old YAML files and old experiment
configs hold settings such as

    {dataset: mnist, loss: wgan-gp, gp_weight: 10, d_steps: 5, d_norm: layer, ema: 0.999, instance_noise: 0.1}

`translate` turns such a mapping (presets included) into the sectioned form once, on load, and prints one
line naming the new form:

    {data: {dataset: mnist}, loss: {name: wgan-gp, terms: [{name: instance-noise, std: 0.1},
     {name: gradient-penalty, weight: 10}]}, optim: {d_steps: 5}, model: {d_norm: layer},
     callbacks: [{name: ema, decay: 0.999}]}

The meaning is exactly the old one: presets named in an old mapping are read in their flat form first (the
old fields override them, as they did), the loss terms come in the order the old `build_terms` added them
(so the sums and random draws of a resumed run are the same), and a term whose weight was implied by another
setting (the gradient penalty by loss wgan-gp, weight clipping by wgan-clip, ACGAN's and InfoGAN's
auxiliary losses by the conditioning) appears exactly when the old trainer used it.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from course_lib.core.errors import ConfigError

# Old field -> its place in the sections.
FIELDS: dict[str, str] = {
    "dataset": "data.dataset",
    "data_root": "data.root",
    "image_size": "data.image_size",
    "limit": "data.limit",
    "flip": "data.flip",
    "task": "data.task",
    "translation": "data.translation",
    "arch": "model.arch",
    "latent_dim": "model.latent_dim",
    "width": "model.width",
    "g_upsample": "model.g_upsample",
    "d_norm": "model.d_norm",
    "spectral_norm": "model.spectral_norm",
    "minibatch_discrimination": "model.minibatch_discrimination",
    "minibatch_stddev": "model.minibatch_stddev",
    "conditional": "model.conditional",
    "n_classes": "model.n_classes",
    "info_cat": "model.info_cat",
    "info_cont": "model.info_cont",
    "style": "model.style",
    "mapping_layers": "model.mapping_layers",
    "style_mixing": "model.style_mixing",
    "loss": "loss.name",
    "label_smoothing": "loss.label_smoothing",
    "adversarial_weight": "loss.adversarial_weight",
    "d_steps": "optim.d_steps",
    "batch_size": "optim.batch_size",
    "steps": "optim.steps",
    "optimizer": "optim.optimizer",
    "lr_g": "optim.lr_g",
    "lr_d": "optim.lr_d",
    "beta1": "optim.beta1",
    "beta2": "optim.beta2",
    "seed": "run.seed",
    "device": "run.device",
    "log_every": "run.log_every",
    "sample_every": "run.sample_every",
    "checkpoint_every": "run.checkpoint_every",
    "n_fixed": "run.n_fixed",
    "amp": "speed.amp",
    "channels_last": "speed.channels_last",
    "compile": "speed.compile",
    "compile_mode": "speed.compile_mode",
    "optimizer_impl": "speed.optimizer_impl",
    "data_on_device": "speed.data_on_device",
}

# The old loss-term fields, in the order the old build_terms added their terms: (field, term, its setting, the
# old default, when the old trainer used the term).
TERMS: tuple[tuple, ...] = (
    ("instance_noise", "instance-noise", "std", 0.0, lambda flat: flat["instance_noise"] > 0),
    ("feature_matching", "feature-matching", "weight", 0.0, lambda flat: flat["feature_matching"] > 0),
    ("aux_weight", "auxiliary-classifier", "weight", 1.0, lambda flat: flat["conditional"] == "acgan"),
    ("info_weight", "mutual-information", "weight", 1.0, lambda flat: flat["conditional"] == "infogan"),
    ("gp_weight", "gradient-penalty", "weight", 10.0, lambda flat: flat["loss"] == "wgan-gp"),
    ("r1_weight", "r1", "gamma", 0.0, lambda flat: flat["r1_weight"] > 0),
    ("clip_value", "weight-clipping", "clip", 0.01, lambda flat: flat["loss"] == "wgan-clip"),
    ("historical_averaging", "historical-averaging", "weight", 0.0, lambda flat: flat["historical_averaging"] > 0),
    ("l1_weight", "l1", "weight", 0.0, lambda flat: flat["l1_weight"] > 0),
    ("cycle_weight", "cycle", "weight", 0.0, lambda flat: flat["cycle_weight"] > 0),
)
# Fields that only checkpoints or old versions carried: dropped (channels is the checkpoint's own record).
DROPPED = ("channels", "hooks")
OLD_ONLY = {*FIELDS, *(f for f, *_ in TERMS), "ema", *DROPPED} - {"loss", "callbacks"}
NEW_TOP_LEVEL = ("data", "model", "loss", "optim", "callbacks", "speed", "run", "preset")

_noted: set[str] = set()


def is_flat(values: dict) -> bool:
    """Whether a mapping is in the old flat form (any old field at the top, or `loss` as a plain name).
    Mixing it with sections is an error."""
    flat = sorted(k for k in values if k in OLD_ONLY or (k == "loss" and isinstance(values[k], str)))
    if not flat:
        return False
    sections = sorted(k for k in values if k in NEW_TOP_LEVEL[:-1] and k != "callbacks" and k not in flat)
    dotted = sorted(k for k in values if isinstance(k, str) and "." in k)
    if sections or dotted:
        raise ConfigError(
            f"settings mix the sectioned form ({', '.join(sections + dotted)}) with old flat fields "
            f"({', '.join(flat)}): write them as {', '.join(new_place(k) for k in flat[:3])}{', ...' if len(flat) > 3 else ''}"
        )
    return True


def new_place(field: str) -> str:
    """Where an old flat field lives in the sections, as a user would write it."""
    if field == "ema":
        return "callbacks: [{name: ema, decay: ...}]"
    term = next((t for t in TERMS if t[0] == field), None)
    if term is not None:
        return f"loss.terms: [{{name: {term[1]}, {term[2]}: ...}}]"
    return FIELDS.get(field, field)


def _presets_flat(names, presets: dict) -> dict:
    flat: dict = {}
    for name in [names] if isinstance(names, str) else names or []:
        if name not in presets:
            raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(presets)}")
        flat.update(flatten({k: v for k, v in presets[name].items() if k != "description"}, name))
    return flat


def flatten(sections: dict, what: str = "settings") -> dict:
    """A (partial) sectioned mapping in the old flat form, for reading old configs that name presets. Terms
    and callbacks without an old field have no flat form."""
    by_path = {path: name for name, path in FIELDS.items()}
    flat: dict = {}
    for section, values in sections.items():
        if section == "callbacks":
            rest = []
            for spec in values:
                if spec["name"] == "ema":
                    flat["ema"] = spec.get("decay", 0.999)
                else:
                    rest.append(copy.deepcopy(spec))
            if rest:
                flat["callbacks"] = rest
            continue
        for key, value in values.items():
            if section == "loss" and key == "terms":
                for spec in value:
                    match = next((t for t in TERMS if t[1] == spec["name"]), None)
                    if match is None:
                        raise ConfigError(f"{what}: the loss term {spec['name']!r} has no old flat form")
                    field, _, setting, default, _ = match
                    flat[field] = spec.get(setting, default)
                continue
            flat[by_path[f"{section}.{key}"]] = copy.deepcopy(value)
    return flat


def translate(values: dict, presets: dict, source: str = "config", defaults: dict | None = None) -> dict:
    """An old flat mapping (with `preset` names or not) in the sectioned form, presets applied; notes it once
    per source (naming the settings that differ from `defaults`)."""
    values = dict(values)
    flat = {**_presets_flat(values.pop("preset", None), presets), **values}
    for name in DROPPED:
        flat.pop(name, None)
    unknown = sorted(set(flat) - OLD_ONLY - {"loss", "callbacks"})
    if unknown:
        known = sorted(OLD_ONLY | {"loss", "callbacks"})
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known (old flat form): {', '.join(known)}")
    sections: dict = {}
    for name, value in flat.items():
        if name in FIELDS:
            section, key = FIELDS[name].split(".")
            sections.setdefault(section, {})[key] = copy.deepcopy(value)
    # The terms, decided on the whole old state (missing fields at their old defaults).
    state = {"loss": "non-saturating", "conditional": "none", **{f: d for f, _, _, d, _ in TERMS}, **flat}
    terms = [{"name": term, setting: state[field]} for field, term, setting, _, used in TERMS if used(state)]
    sections.setdefault("loss", {})["terms"] = terms
    callbacks = [{"name": "ema", "decay": flat["ema"]}] if flat.get("ema") else []
    sections["callbacks"] = callbacks + copy.deepcopy(list(flat.get("callbacks") or []))
    if source not in _noted and not _shipped(source):
        _noted.add(source)
        note(
            f"{source} is in the old flat form; read as the sectioned config "
            f"{json.dumps(summary(sections, defaults or {}))} (other settings at their defaults)"
        )
    return sections


def _shipped(source: str) -> bool:
    """Whether `source` is a file shipped inside course_lib (the pretrained generators, saved in the flat form):
    nothing its user could rewrite, so no note."""
    assets = Path(__file__).resolve().parents[1] / "assets"
    try:
        return Path(source).resolve().is_relative_to(assets)
    except (OSError, ValueError):
        return False


def summary(sections: dict, defaults: dict) -> dict:
    """The sectioned settings that differ from the defaults (for the note)."""
    out = {}
    for key, value in sections.items():
        default = defaults.get(key)
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if not isinstance(default, dict) or default.get(k, object()) != v}
        if value not in ({}, []) and value != default:
            out[key] = value
    return out


def note(message: str) -> None:
    """A one-line note on stderr (that an old config was translated, and into what)."""
    print(f"note: {message}", file=sys.stderr, flush=True)
