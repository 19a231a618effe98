"""Batch scoring of the GAN on a chosen device: ``device`` reaches the model and its index in
the job and in every worker, is part of the job's identity, and is checked up front; on a
GPU (where present) the GAN and its exact index score on CUDA."""

import numpy as np
import pandas as pd
import pytest

from recogan.artifacts import load_model, save_model
from recogan.batch import batch_score, read_recommendations, read_success
from recogan.batch._job import BatchConfig, _workers
from recogan.cli import main
from recogan.gan.model import GANRecommender
from recogan.index._torch import cuda_available
from tests.fast_gan import FAST as GAN_FAST

FAST = {"show_progress": False, "workers": 1}


@pytest.fixture(scope="module")
def gan_bundle(tmp_path_factory, clustered):
    path = tmp_path_factory.mktemp("bundles") / "gan"
    save_model(GANRecommender(**GAN_FAST, index_kind="exact").fit(clustered), path)
    return path


def _items(out):
    return read_recommendations(out).sort_values(["user_id", "rank"])["item_id"].to_numpy()


def test_cpu_and_auto_without_gpu_score_the_same_rows(gan_bundle, tmp_path):
    a = batch_score(gan_bundle, tmp_path / "a", n=5, device="cpu", **FAST)
    assert read_success(tmp_path / "a")["device"] == "cpu"
    model = load_model(gan_bundle, device="cpu")
    assert model.index_.backend_ == "cpu"
    items, _ = model.recommend(np.arange(model.n_users_), n=5)
    valid = items >= 0
    expected = pd.DataFrame(
        {
            "user_id": np.repeat(model.users_.to_ids(np.arange(model.n_users_)), valid.sum(1)),
            "rank": np.cumsum(valid, 1)[valid],
            "item_id": model.items_.to_ids(items[valid]),
        }
    ).sort_values(["user_id", "rank"])
    np.testing.assert_array_equal(_items(tmp_path / "a"), expected["item_id"].to_numpy())
    if cuda_available():
        return  # "auto" means the GPU here: covered by the GPU test
    b = batch_score(gan_bundle, tmp_path / "b", n=5, **FAST)  # device="auto"
    assert b.rows_sha256 == a.rows_sha256
    assert read_success(tmp_path / "b")["device"] == "cpu"


def test_worker_processes_load_on_the_job_device(gan_bundle, tmp_path):
    one = batch_score(gan_bundle, tmp_path / "one", n=5, device="cpu", partition_size=50, **FAST)
    two = batch_score(
        gan_bundle, tmp_path / "two", n=5, device="cpu", partition_size=50, workers=2,
        show_progress=False,
    )  # fmt: skip
    assert two.workers == 2 and two.rows_sha256 == one.rows_sha256


def test_bad_device_is_a_clear_error(gan_bundle, tmp_path):
    with pytest.raises(ValueError, match="device must be one of"):
        batch_score(gan_bundle, tmp_path / "o", device="tpu", **FAST)
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(cuda_available(), reason="checks the error raised without a GPU")
def test_cuda_without_gpu_is_refused_before_any_work(gan_bundle, tmp_path, capsys):
    with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
        batch_score(gan_bundle, tmp_path / "o", device="cuda", **FAST)
    assert not (tmp_path / "o").exists()
    args = ["batch-score", "--model", str(gan_bundle), "--out", str(tmp_path / "o")]
    code = main([*args, "--device", "cuda", "--no-progress"])
    assert code != 0 and "no CUDA GPU" in capsys.readouterr().err


def test_cli_device_option(gan_bundle, tmp_path):
    out = tmp_path / "o"
    args = ["batch-score", "--model", str(gan_bundle), "--out", str(out), "--n", "3"]
    assert main([*args, "--device", "cpu", "--no-progress", "--workers", "1"]) == 0
    assert read_success(out)["device"] == "cpu"


def test_one_worker_per_gpu_unless_asked():
    cfg = BatchConfig(threads=1)
    assert _workers(cfg, 10, "cuda") == 1
    assert _workers(BatchConfig(workers=3), 10, "cuda") == 3
    assert _workers(BatchConfig(workers=3), 10, "cpu") == 3


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU (torch.cuda)")
def test_gan_scores_on_the_gpu(gan_bundle, tmp_path):
    model = load_model(gan_bundle, device="cuda")
    assert model.device_ == "cuda"
    assert (model.index_.backend_, model.index_.torch_device_) == ("torch", "cuda")
    gpu = batch_score(gan_bundle, tmp_path / "g", n=5, show_progress=False)  # auto: the GPU
    success = read_success(tmp_path / "g")
    assert success["device"] == "cuda" and gpu.workers == 1
    batch_score(gan_bundle, tmp_path / "c", n=5, device="cpu", **FAST)
    g, c = _items(tmp_path / "g"), _items(tmp_path / "c")
    # float math differs in the last bits between devices: near-ties may swap
    assert g.shape == c.shape and np.mean(g == c) >= 0.98
