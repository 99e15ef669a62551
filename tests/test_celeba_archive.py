"""Getting CelebA where notebook 09 runs (Colab, Kaggle): a local img_align_celeba.zip, or torchvision's download.

The archive tests build a zip in the official layout (one `img_align_celeba/` folder of JPEGs) from a few
generated images (no CelebA image is copied), unpack it with `prepare_celeba` and load it with `load_celeba`. The
download way is checked for what course_lib does with it (torchvision's `CelebA(root, split="all", download=True)`,
its error turned into one line); torchvision's own Google Drive code is not run (no network here).
"""

import zipfile

import numpy as np
import pytest
from PIL import Image

from course_lib.core.errors import DataError
from course_lib.data import load_celeba, prepare_celeba
from course_lib.latent.pretrained import fetch_celeba_if_asked


def make_archive(path, names=("000001.jpg", "000002.jpg", "000003.jpg"), folder="img_align_celeba"):
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zipped:
        for name in names:
            image = Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8))
            scratch = path.parent / f"scratch-{len(name)}.jpg"
            image.save(scratch, quality=90)
            zipped.write(scratch, f"{folder}/{name}")
            scratch.unlink()
    return path


def test_a_local_zip_is_unpacked_into_the_layout_load_celeba_reads(tmp_path):
    archive = make_archive(tmp_path / "img_align_celeba.zip")
    root = tmp_path / "data"
    folder = prepare_celeba(root, archive=archive)
    assert folder == root / "celeba" / "img_align_celeba"
    assert sorted(p.name for p in folder.iterdir()) == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".unpacking-")]  # nothing left half-done
    data = load_celeba(root, image_size=16, progress=False)
    assert tuple(data.images.shape) == (3, 3, 16, 16)
    assert prepare_celeba(root, archive=tmp_path / "not-there.zip") == folder  # already there: nothing to do


def test_the_environment_variable_names_the_zip_and_notebook_09_picks_it_up(tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    assert fetch_celeba_if_asked(root) is False  # nothing asked for: no CelebA, and nothing tried
    monkeypatch.setenv("COURSE_LIB_CELEBA_ZIP", str(make_archive(tmp_path / "faces.zip")))
    assert fetch_celeba_if_asked(root) is True
    assert "getting CelebA into" in capsys.readouterr().out


def test_a_foreign_or_hostile_archive_is_refused_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    root = tmp_path / "data"
    escaping = make_archive(tmp_path / "evil.zip", names=("../../escaped.jpg",))
    with pytest.raises(DataError, match="is not inside img_align_celeba/"):
        prepare_celeba(root, archive=escaping)
    assert not (tmp_path / "escaped.jpg").exists() and not (root / "celeba" / "img_align_celeba").exists()
    with pytest.raises(DataError, match="is not inside img_align_celeba/"):
        prepare_celeba(root, archive=make_archive(tmp_path / "other.zip", folder="photos"))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable zip archive"):
        prepare_celeba(root, archive=tmp_path / "broken.zip")
    monkeypatch.setenv("COURSE_LIB_CELEBA_ZIP", str(tmp_path / "broken.zip"))
    assert fetch_celeba_if_asked(root) is False and "could not get CelebA" in capsys.readouterr().out


def test_without_an_archive_the_download_is_torchvisions_and_its_failure_one_line(tmp_path, monkeypatch):
    import torchvision

    calls = []

    class RefusingCelebA:  # what Google Drive's daily quota looks like from torchvision
        def __init__(self, root, **kwargs):
            calls.append((root, kwargs))
            raise RuntimeError("Too many users have viewed or downloaded this file recently")

    monkeypatch.setattr(torchvision.datasets, "CelebA", RefusingCelebA)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="CelebA not found"):
        prepare_celeba(root)  # no archive and no download asked for: not tried
    assert calls == []
    with pytest.raises(DataError, match="downloading CelebA into .* failed: Too many users.*img_align_celeba.zip"):
        prepare_celeba(root, download=True)
    assert calls == [(str(root), {"split": "all", "target_type": [], "download": True})]
