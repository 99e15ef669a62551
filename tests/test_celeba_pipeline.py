"""The CelebA data pipeline: the standard crop/resize, the uint8 cache, and batches with flips on the device."""

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib import data as data_mod
from course_lib.core.errors import DataError
from course_lib.data import (
    BatchLoader,
    ImageData,
    load_celeba,
    load_image_folder,
    preprocess_image,
)


def _celeba_like(path, inner=(10, 200, 30), border=(255, 0, 0), size=(178, 218)):
    """A 178x218 image (CelebA's size): a flat colour in the central 178x178 square, another outside it."""
    width, height = size
    top = (height - width) // 2  # 20: the rows CenterCrop(178) drops above the square
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = border
    pixels[top : top + width] = inner
    Image.fromarray(pixels).save(path)
    return path


def _face_folder(folder, n=12, seed=0):
    """A tiny synthetic stand-in for img_align_celeba: smooth random 178x218 JPEGs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        coarse = rng.integers(0, 256, (14, 12, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((178, 218), Image.BILINEAR).save(folder / f"{i + 1:06d}.jpg", quality=90)
    return folder


def test_crop_takes_exactly_the_central_square(tmp_path):
    # Closed form: everything outside rows 20..197 is red, so any red in the result means a wrong crop.
    out = preprocess_image(_celeba_like(tmp_path / "a.png"), image_size=64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert (out == np.array([10, 200, 30], dtype=np.uint8)).all()


def test_preprocessing_matches_torchvision_center_crop_and_resize(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    T = torchvision.transforms
    reference = T.Compose([T.CenterCrop(178), T.Resize(64, interpolation=T.InterpolationMode.BILINEAR, antialias=True)])
    rng = np.random.default_rng(1)
    path = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(path)
    expected = np.asarray(reference(Image.open(path).convert("RGB")))
    np.testing.assert_array_equal(preprocess_image(path, 64), expected)


def test_known_celeba_image_matches_torchvision(shared_data):
    """000001.jpg, the first CelebA image, through ours and through torchvision's transforms."""
    torchvision = pytest.importorskip("torchvision")
    T = torchvision.transforms
    path = shared_data / "celeba" / "img_align_celeba" / "000001.jpg"
    with Image.open(path) as img:
        assert img.size == (178, 218)
        expected = np.asarray(T.Compose([T.CenterCrop(178), T.Resize(64, antialias=True)])(img.convert("RGB")))
    ours = preprocess_image(path, 64)
    np.testing.assert_array_equal(ours, expected)
    # And against a float resize of the crop done with torch (a different resampling code path):
    # antialiased bilinear, so within a couple of grey levels of PIL everywhere.
    with Image.open(path) as img:
        crop = torch.from_numpy(np.asarray(img.convert("RGB"))[20:198].copy()).permute(2, 0, 1)[None].float()
    torch_resized = torch.nn.functional.interpolate(crop, size=(64, 64), mode="bilinear", antialias=True)
    diff = (torch_resized[0].permute(1, 2, 0) - torch.from_numpy(ours.copy()).float()).abs()
    assert diff.max() <= 3 and diff.mean() < 0.6


def test_real_celeba_loads_through_the_cache(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_LIB_CACHE", str(tmp_path / "cache"))
    faces = load_celeba(shared_data, limit=40, progress=False)
    assert faces.images.shape == (40, 3, 64, 64) and faces.images.dtype == torch.uint8
    first = preprocess_image(shared_data / "celeba" / "img_align_celeba" / "000001.jpg")
    np.testing.assert_array_equal(faces.images[0].permute(1, 2, 0).numpy(), first)
    monkeypatch.setattr(data_mod, "decode_images", _no_decoding)
    assert torch.equal(load_celeba(shared_data, limit=40, progress=False).images, faces.images)


def _no_decoding(*args, **kwargs):
    raise AssertionError("the cached array should have been used instead of decoding the JPEGs again")


def test_cache_round_trip_and_invalidation(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_LIB_CACHE", str(tmp_path / "cache"))
    folder = _face_folder(tmp_path / "celeba" / "img_align_celeba")
    first = load_celeba(tmp_path, progress=False, workers=1)
    cached = list((tmp_path / "cache" / "images").glob("celeba-64px-12-*.npy"))
    assert len(cached) == 1
    stored = np.load(cached[0])
    assert stored.dtype == np.uint8 and stored.shape == (12, 64, 64, 3)
    np.testing.assert_array_equal(stored, first.images.permute(0, 2, 3, 1).numpy())
    for i, f in enumerate(sorted(folder.iterdir())):  # cache order = sorted file order, each = preprocess_image
        np.testing.assert_array_equal(stored[i], preprocess_image(f))

    real_decode = data_mod.decode_images
    monkeypatch.setattr(data_mod, "decode_images", _no_decoding)
    assert torch.equal(load_celeba(tmp_path, progress=False).images, first.images)

    # A damaged cache file is rebuilt, not trusted.
    cached[0].write_bytes(b"not an array")
    monkeypatch.setattr(data_mod, "decode_images", real_decode)
    assert torch.equal(load_celeba(tmp_path, progress=False, workers=1).images, first.images)
    assert np.load(cached[0]).shape == (12, 64, 64, 3)

    # A different set of files gets its own cache entry.
    _face_folder(folder, n=13, seed=5)
    assert len(load_celeba(tmp_path, progress=False, workers=1)) == 13
    assert len(list((tmp_path / "cache" / "images").glob("celeba-64px-*.npy"))) == 2


def test_truncated_jpeg_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_LIB_CACHE", str(tmp_path / "cache"))
    folder = _face_folder(tmp_path / "faces", n=3)
    bad = folder / "000002.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(DataError, match="000002.jpg"):
        load_image_folder(folder, crop=178, progress=False, workers=1)


def _data(n=40, seed=0):
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return ImageData(images, None, "random", "random")


def test_flips_are_a_pure_function_of_seed_and_index():
    data = _data()
    a = BatchLoader(data, 8, seed=3, flip=True)
    b = BatchLoader(data, 8, seed=3, flip=True)
    order = [7, 0, 3, 12, 1]
    first = {i: a.batch(i)[0] for i in order}
    for i in reversed(order):  # another access order, another loader: the same batches
        assert torch.equal(b.batch(i)[0], first[i])
    assert not torch.equal(BatchLoader(data, 8, seed=4, flip=True).batch(0)[0], first[0])


def test_flip_mirrors_exactly_the_chosen_images_and_keeps_the_order():
    data = _data()
    plain = BatchLoader(data, 8, seed=1)
    flipped = BatchLoader(data, 8, seed=1, flip=True)
    mirrored = 0
    for i in range(10):  # two epochs
        x, mask = plain.batch(i)[0], flipped.flips(i)
        y = flipped.batch(i)[0]
        for j in range(8):
            assert torch.equal(y[j], x[j].flip(-1) if mask[j] else x[j])
        mirrored += int(mask.sum())
    assert 20 <= mirrored <= 60  # ~half of 80 coins
    assert plain.flips(0) is None


def test_channels_last_batches_hold_the_same_values():
    data = _data()
    x = BatchLoader(data, 8, seed=0).batch(2)[0]
    y = BatchLoader(data, 8, seed=0, channels_last=True).batch(2)[0]
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, y)
    assert x.min() >= -1 and x.max() <= 1


def test_on_device_loader_gives_the_same_batches():
    data = _data()
    host = BatchLoader(data, 8, seed=2, flip=True)
    resident = BatchLoader(data, 8, seed=2, flip=True, on_device=True)  # on the CPU: the same code path
    for i in (0, 5, 9):
        assert torch.equal(host.batch(i)[0], resident.batch(i)[0])


def test_shipped_celeba_configs_load():
    from pathlib import Path

    from course_lib.experiment import load_experiment
    from course_lib.training import TrainConfig
    from course_lib.training.callbacks import build_callback

    configs = Path(__file__).resolve().parent.parent / "configs"
    config = TrainConfig.from_file(configs / "celeba64_dcgan.yaml")
    data, model, optim, speed = config.data, config.model, config.optim, config.speed
    assert (data.dataset, data.image_size, optim.batch_size, model.width) == ("celeba", 64, 128, 64)
    assert speed.compile == speed.channels_last == speed.data_on_device == "auto"
    (tracker,) = [build_callback(spec) for spec in config.callbacks]
    assert tracker.extractor_name == "inception" and tracker.n_samples == 10_000
    experiment = load_experiment(configs / "celeba64_experiment.yaml")
    runs = [experiment.train_config(v, 0) for v in experiment.variants]
    ema = [next((c["decay"] for c in r.callbacks if c["name"] == "ema"), 0.0) for r in runs]
    assert ema == [0.0, 0.999, 0.0] and runs[2].model.spectral_norm
    assert experiment.eval.extractor == "inception" and experiment.eval.n_samples == 10_000


def test_cpu_recipe_is_the_gpu_recipe_made_affordable():
    """configs/celeba64_cpu.yaml: the same DCGAN and optimiser as the GPU recipe, narrower, smaller batches, no FID tracking."""
    from pathlib import Path

    from course_lib.training import TrainConfig

    configs = Path(__file__).resolve().parent.parent / "configs"
    cpu, gpu = (TrainConfig.from_file(configs / name) for name in ("celeba64_cpu.yaml", "celeba64_dcgan.yaml"))
    for setting in ("data.dataset", "data.image_size", "model.arch", "model.latent_dim", "loss", "optim.lr_g"):
        assert cpu.get(setting) == gpu.get(setting), setting
    for setting in ("optim.lr_d", "optim.beta1", "optim.beta2"):
        assert cpu.get(setting) == gpu.get(setting), setting
    assert (cpu.model.width, cpu.optim.batch_size, cpu.run.device) == (32, 32, "cpu")
    assert cpu.callbacks == [{"name": "ema", "decay": 0.995}]  # the EMA only: no FID tracking
    assert cpu.run.checkpoint_every <= 250  # resumable every few minutes


@pytest.mark.parametrize("layout", ["no folder", "empty folder"])
def test_missing_or_empty_celeba_is_one_line_that_says_how_to_get_it(tmp_path, layout):
    if layout == "empty folder":
        (tmp_path / "celeba" / "img_align_celeba").mkdir(parents=True)
    with pytest.raises(DataError) as err:
        load_celeba(tmp_path, progress=False)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path) in message
    if layout == "no folder":
        assert "img_align_celeba.zip" in message
