"""Quality measures of generated vectors on cases whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

from recogan import vector_quality as vq


def test_frechet_hand_computed():
    # X: mean 1, variance 2; Y: mean 3, variance 8  ->  (1-3)^2 + 2 + 8 - 2*sqrt(16) = 6
    X = np.array([[0.0], [2.0]])
    Y = np.array([[1.0], [5.0]])
    assert vq.frechet_distance(X, Y) == pytest.approx(6.0)
    assert vq.frechet_distance(Y, X) == pytest.approx(6.0)


def test_frechet_closed_form_for_gaussians(rng):
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt s1 - sqrt s2)^2
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    s1, s2 = rng.uniform(0.1, 3, 4), rng.uniform(0.1, 3, 4)
    expect = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    got = vq.frechet_from_moments(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expect, rel=1e-10)
    # full covariances: against scipy's general matrix square root
    A, B = rng.standard_normal((5, 5)), rng.standard_normal((5, 5))
    C1, C2 = A @ A.T + 0.1 * np.eye(5), B @ B.T
    m1, m2 = rng.standard_normal(5), rng.standard_normal(5)
    ref = (m1 - m2) @ (m1 - m2) + np.trace(C1 + C2 - 2 * scipy.linalg.sqrtm(C1 @ C2).real)
    assert vq.frechet_from_moments(m1, C1, m2, C2) == pytest.approx(ref, rel=1e-8)
    # samples of two Gaussians estimate the closed form
    x = rng.multivariate_normal(mu1, np.diag(s1), 20000)
    y = rng.multivariate_normal(mu2, np.diag(s2), 20000)
    assert vq.frechet_distance(x, y) == pytest.approx(expect, rel=0.05)  # sampling error


def test_frechet_is_safe_on_singular_covariances(rng):
    x = rng.standard_normal((50, 3)) @ np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 0]])  # rank 2
    assert vq.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert vq.frechet_distance(x, x + 2.0) == pytest.approx(12.0, rel=1e-9)  # only the means


def test_frechet_bad_input():
    with pytest.raises(ValueError, match="dims"):
        vq.frechet_distance(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="at least 2 points"):
        vq.frechet_distance(np.zeros((1, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        vq.frechet_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))


def test_knn_radii_hand_computed():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(vq.knn_radii(x, 1), [1, 1, 2, 4])
    np.testing.assert_allclose(vq.knn_radii(x, 2), [3, 2, 3, 6])
    with pytest.raises(ValueError, match="more than k points"):
        vq.knn_radii(x, 4)


def test_precision_recall_identical_disjoint_and_collapsed(rng):
    real = rng.standard_normal((300, 4))
    assert vq.precision_recall(real, real.copy()) == (1.0, 1.0)
    assert vq.precision_recall(real, real + 100.0) == (0.0, 0.0)
    # four separated modes; the generator covers only one of them
    centres = np.eye(4) * 20.0
    modes = rng.integers(0, 4, 800)
    real = centres[modes] + rng.standard_normal((800, 4))
    collapsed = centres[0] + rng.standard_normal((400, 4))
    p, r = vq.precision_recall(real, collapsed)
    assert p > 0.9 and r < 0.35
    # a generator that covers all modes recalls them
    full = centres[rng.integers(0, 4, 800)] + rng.standard_normal((800, 4))
    p2, r2 = vq.precision_recall(real, full)
    assert p2 > 0.9 and r2 > 0.9


def test_draw_spread():
    G = np.array([[[0.0, 0], [3, 4], [0, 0]], [[1, 1], [1, 1], [1, 1]]])
    # pairs of user 0: 5, 0, 5 -> mean 10/3; user 1: all draws equal
    np.testing.assert_allclose(vq.draw_spread(G), [10 / 3, 0.0])
    assert np.isnan(vq.draw_spread(np.zeros((2, 1, 3)))).all()


def test_draw_coverage_and_nearest_items():
    V = np.eye(3)  # three items along the axes
    G = np.array(
        [
            [[1.0, 0.1, 0], [0, 0.9, 0.2]],  # -> items 0 and 1
            [[0, 0, 1.0], [0, 0.1, 2.0]],  # -> item 2 twice
            [[1.0, 0, 0], [1.0, 0, 0]],
        ]
    )
    np.testing.assert_array_equal(vq.nearest_items(G, V), [[0, 1], [2, 2], [0, 0]])
    cov = vq.draw_coverage(G, [[0, 1, 2], [2], []], V)
    np.testing.assert_allclose(cov[:2], [2 / 3, 1.0])
    assert np.isnan(cov[2])
    # the same targets as a sparse matrix; a user's seen item is not a landing place
    T = sp.csr_matrix(np.array([[1, 1, 1], [0, 0, 1], [0, 0, 0]]))
    np.testing.assert_allclose(vq.draw_coverage(G, T, V)[:2], [2 / 3, 1.0])
    seen = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]]))
    nn = vq.nearest_items(G, V, exclude=seen)
    assert 0 not in nn[0] and (nn[1] == 2).all()
    # l2 and inner product differ when norms differ
    W = np.array([[1.0, 0], [5.0, 0]])
    g = np.array([[[1.0, 0]]])
    assert vq.nearest_items(g, W, "ip")[0, 0] == 1 and vq.nearest_items(g, W, "l2")[0, 0] == 0
    with pytest.raises(IndexError, match="outside"):
        vq.draw_coverage(G, [[0], [5], []], V)
    with pytest.raises(ValueError, match="targets has 1 users but generated has 3"):
        vq.draw_coverage(G, [[0]], V)


def test_generation_quality_summary(rng):
    V = rng.standard_normal((60, 4))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    targets = [rng.choice(60, 3, replace=False) for _ in range(40)]
    # draws near each user's targets: the nearest items are the targets
    G = np.stack([V[t[[0, 1, 2, 0]]] + 0.01 * rng.standard_normal((4, 4)) for t in targets])
    q = vq.generation_quality(G, targets, V, seed=1)
    s = q.summary()
    assert set(s) == {"frechet", "precision", "recall", "draw_spread", "draw_coverage", "users",
                      "draws"}  # fmt: skip
    assert s["users"] == 40 and s["draws"] == 4
    assert s["draw_coverage"] == pytest.approx(1.0)
    assert s["precision"] > 0.9 and s["frechet"] < 0.05
    assert q.draw_spread.shape == (40,) and (q.draw_spread > 0.5).all()
    # collapsed draws: every user draws one point, far from most purchases
    C = np.repeat(V[targets[0][0]][None, None, :], 40, 0).repeat(4, 1)
    C = C + 1e-3 * rng.standard_normal(C.shape)
    c = vq.generation_quality(C, targets, V, seed=1).summary()
    assert c["recall"] < 0.2 and c["draw_spread"] < 0.01 and c["draw_coverage"] < 0.2
    assert c["frechet"] > s["frechet"]
    # seeded: the same numbers again, also when subsampling
    a = vq.generation_quality(G, targets, V, max_points=50, seed=3).summary()
    b = vq.generation_quality(G, targets, V, max_points=50, seed=3).summary()
    assert a == b
