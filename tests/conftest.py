"""Shared test fixtures: a private cache folder, and the real-data folder when this machine has it."""

import os

import pytest
import torch

from course_lib.core.runtime import shared_data_dir

# Under pytest-xdist (README's `-n auto`) the cores are shared by the workers: one worker per core, each (and every
# notebook kernel it starts, through OMP_NUM_THREADS) with its share of threads, so they do not oversubscribe.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_THREADS = max(1, min(2, (os.cpu_count() or 1) // _WORKERS))
torch.set_num_threads(_THREADS)
if _WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep preprocessed-image and statistics caches out of the user's home during tests."""
    os.environ["COURSE_LIB_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


def assert_same_training_state(a, b) -> None:
    """Two trainers hold identical models, optimiser states and training noise streams."""
    for ma, mb in ((a.generator, b.generator), (a.discriminator, b.discriminator)):
        for (name, ta), tb in zip(ma.state_dict().items(), mb.state_dict().values()):
            assert torch.equal(ta, tb), name
    for oa, ob in ((a.opt_g, b.opt_g), (a.opt_d, b.opt_d)):
        for sa, sb in zip(oa.state_dict()["state"].values(), ob.state_dict()["state"].values()):
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(a.noise_rng.get_state(), b.noise_rng.get_state())


@pytest.fixture
def same_training_state():
    """The assertion above, for tests comparing a resumed or hooked run with a plain one."""
    return assert_same_training_state


@pytest.fixture
def shared_data():
    """../shared/data (real MNIST, 20k real CelebA images); tests using it skip on machines without it."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("needs the course's real-data folder ../shared/data (present on development and CI machines only)")
    return path


# Submission fixtures for the autograder are notebooks that are meant to fail (invalid JSON, endless loops):
# they are inputs of tests/test_grading*.py, not notebooks for nbval to run.
collect_ignore = ["fixtures"]
