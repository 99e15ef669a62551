import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.core.errors import DataError
from course_lib.core.images import to_float, to_uint8
from course_lib.data import (
    BatchLoader,
    ImageData,
    load_celeba,
    load_dataset,
    load_embedded_mnist,
    load_image_folder,
    load_torchvision_mnist,
    preprocess_image,
    read_idx,
    resize,
)


def test_embedded_mnist_is_the_documented_subset():
    train, test = load_embedded_mnist("train"), load_embedded_mnist("test")
    assert train.images.shape == (10_000, 1, 28, 28) and test.images.shape == (2_000, 1, 28, 28)
    assert train.images.dtype == torch.uint8
    assert sorted(train.labels.unique().tolist()) == list(range(10))
    # Real digits: roughly balanced classes, mostly-black background, bright strokes.
    counts = torch.bincount(train.labels, minlength=10)
    assert counts.min() > 800 and counts.max() < 1200
    assert 0.1 < (train.images > 128).float().mean() < 0.2
    # MNIST's first training digit is a 5, its first test digit a 7.
    assert train.labels[0] == 5 and test.labels[0] == 7


def test_embedded_mnist_equals_the_first_digits_of_real_mnist(shared_data):
    full = load_torchvision_mnist("mnist-full", shared_data, "train")
    assert full.images.shape == (60_000, 1, 28, 28)
    sub = load_embedded_mnist("train")
    assert torch.equal(full.images[:10_000], sub.images) and torch.equal(full.labels[:10_000], sub.labels)
    test = load_dataset("mnist", root=shared_data, split="test")
    assert torch.equal(test.images[:2_000], load_embedded_mnist("test").images)


def test_float_conversion_round_trips():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_float(x)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trip_and_corruption(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    _write_idx(tmp_path / "ok-idx3-ubyte", arr)
    assert np.array_equal(read_idx(tmp_path / "ok-idx3-ubyte"), arr)
    truncated = tmp_path / "bad-idx3-ubyte"
    truncated.write_bytes((tmp_path / "ok-idx3-ubyte").read_bytes()[:-100])
    with pytest.raises(DataError, match="bad-idx3-ubyte.*truncated"):
        read_idx(truncated)
    garbage = tmp_path / "garbage-idx3-ubyte"
    garbage.write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(DataError, match="garbage-idx3-ubyte.*magic"):
        read_idx(garbage)


def test_missing_mnist_names_dataset_path_and_remedy(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist-full", root=tmp_path)
    msg = str(err.value)
    assert "mnist-full not found" in msg and str(tmp_path / "MNIST" / "raw") in msg and "download" in msg
    with pytest.raises(DataError, match="FashionMNIST"):
        load_dataset("fashion-mnist", root=tmp_path)


def test_truncated_mnist_file_is_named(tmp_path, shared_data):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (shared_data / "MNIST" / "raw").iterdir():
        data = f.read_bytes()
        (raw / f.name).write_bytes(data[: len(data) // 2] if f.name.startswith("train-images") else data)
    with pytest.raises(DataError, match="train-images-idx3-ubyte is truncated"):
        load_dataset("mnist", root=tmp_path)


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'lsun'.*mnist"):
        load_dataset("lsun")


def _face(path, seed=0):
    """A synthetic 178x218 'aligned CelebA' image with structure in every row."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
    arr[:20] = 0  # the rows the crop must drop
    arr[198:] = 255
    Image.fromarray(arr).save(path, quality=95)
    return path


def test_celeba_preprocessing_matches_torchvision_reference(tmp_path, shared_data):
    from torchvision import transforms

    reference = transforms.Compose([transforms.CenterCrop(178), transforms.Resize(64)])
    files = [_face(tmp_path / "synthetic.jpg")]
    files += sorted((shared_data / "celeba" / "img_align_celeba").glob("0000*.jpg"))[:3]
    for f in files:
        ours = preprocess_image(f, 64, crop=178)
        with Image.open(f) as img:
            theirs = np.asarray(reference(img.convert("RGB")))
        assert ours.shape == (64, 64, 3) and ours.dtype == np.uint8
        assert np.array_equal(ours, theirs), f


def test_celeba_crop_drops_the_top_and_bottom_rows(tmp_path):
    # Known pixels: rows 0..19 black and 198..217 white are outside the crop, so the 178x178
    # output (no resize) is exactly rows 20..197 of the decoded image.
    path = tmp_path / "face.png"
    arr = np.random.default_rng(1).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    assert np.array_equal(preprocess_image(path, 178, crop=178), arr[20:198])


def test_celeba_real_subset_and_cache(shared_data, monkeypatch):
    first = load_celeba(shared_data, 64, limit=300, progress=False)
    assert first.images.shape == (300, 3, 64, 64) and first.images.dtype == torch.uint8
    assert 60 < first.images.float().mean() < 200  # real photos, not blank
    # The second load reads the cache and never decodes a JPEG.
    monkeypatch.setattr("course_lib.data.decode_images", lambda *a, **k: pytest.fail("re-decoded JPEGs"))
    again = load_celeba(shared_data, 64, limit=300, progress=False)
    assert torch.equal(first.images, again.images)


def test_image_folder_cache_round_trips_and_detects_changes(tmp_path):
    folder = tmp_path / "faces" / "class0"
    folder.mkdir(parents=True)
    for i in range(3):
        _face(folder / f"{i:06d}.jpg", seed=i)
    a = load_image_folder(tmp_path / "faces", 32, crop=178, progress=False)
    b = load_image_folder(tmp_path / "faces", 32, crop=178, progress=False)
    assert torch.equal(a.images, b.images) and a.images.shape == (3, 3, 32, 32)
    _face(folder / "000003.jpg", seed=3)  # a new file changes the cache key
    assert len(load_image_folder(tmp_path / "faces", 32, crop=178, progress=False)) == 4


def test_corrupt_image_is_named(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _face(folder / "000001.jpg")
    (folder / "000002.jpg").write_bytes((folder / "000001.jpg").read_bytes()[:300])
    with pytest.raises(DataError, match="000002.jpg"):
        load_image_folder(folder, 32, crop=178, progress=False, use_cache=False)


def test_missing_celeba_explains_quota_and_folder_layout(tmp_path):
    with pytest.raises(DataError) as err:
        load_celeba(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "celeba" / "img_align_celeba") in msg
    assert "Too many users" in msg and "ImageFolder" in msg


def test_resize_mnist_to_32():
    data = resize(load_embedded_mnist("test").subset(10), 32)
    assert data.images.shape == (10, 1, 32, 32) and data.images.dtype == torch.uint8


def test_image_data_rejects_bad_arrays():
    with pytest.raises(DataError, match="uint8"):
        ImageData(torch.zeros(2, 1, 8, 8), None, "x", "x")
    with pytest.raises(DataError, match="shape"):
        ImageData(torch.zeros(2, 8, 8, dtype=torch.uint8), None, "x", "x")
    with pytest.raises(DataError, match="no images"):
        ImageData(torch.zeros(0, 1, 8, 8, dtype=torch.uint8), None, "x", "x")


def test_batch_loader_is_stateless_and_covers_each_epoch():
    data = load_embedded_mnist("test").subset(100)
    a, b = BatchLoader(data, 10, seed=3), BatchLoader(data, 10, seed=3)
    # Batch 13 is the same whether or not batches 0..12 were drawn first (exact resume).
    for i in range(13):
        a.batch(i)
    assert torch.equal(a.batch(13)[0], b.batch(13)[0])
    # One epoch sees every image exactly once.
    seen = torch.cat([a.batch(i)[1] for i in range(10)])
    assert torch.equal(torch.sort(seen).values, torch.sort(data.labels).values)
    x, _ = a.batch(0)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert not torch.equal(a.batch(0)[1], a.batch(10)[1])  # a new order every epoch
    with pytest.raises(DataError, match="larger than the dataset"):
        BatchLoader(data, 101)
