"""Lee and refined Lee on synthetic gamma speckle with a known truth."""
import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from earthmind_sar.speckle import apply, lee, refined_lee

LOOKS = 4.0


def _scene(seed=0):
    truth = np.full((96, 96), 0.05)
    truth[:, 48:] = 0.5  # a vertical step edge
    rng = np.random.default_rng(seed)
    return truth, truth * rng.gamma(LOOKS, 1.0 / LOOKS, size=truth.shape)


def _cv(x):
    return x.std() / x.mean()


@pytest.mark.parametrize("name", ["lee", "refined_lee"])
def test_flat_areas_are_smoothed_and_the_mean_kept(name):
    truth, noisy = _scene()
    out = apply(name, noisy, looks=LOOKS)
    for cols in (slice(8, 40), slice(56, 88)):
        before, after = noisy[8:-8, cols], out[8:-8, cols]
        assert _cv(before) == pytest.approx(0.5, abs=0.05)  # 1/sqrt(L): the speckle we made
        assert _cv(after) < 0.2
        assert after.mean() == pytest.approx(truth[8:-8, cols].mean(), rel=0.03)


def test_refined_lee_keeps_the_edge_best():
    truth, noisy = _scene(1)
    dark_side = (slice(8, -8), slice(46, 48))  # the two columns just left of the edge
    err = {
        "box": abs(uniform_filter(noisy, 7)[dark_side].mean() - 0.05),
        "lee": abs(lee(noisy, 7, LOOKS)[dark_side].mean() - 0.05),
        "refined_lee": abs(refined_lee(noisy, LOOKS)[dark_side].mean() - 0.05),
    }
    assert err["refined_lee"] < err["lee"] < err["box"]
    assert err["refined_lee"] < 0.4 * err["box"]


def test_no_speckle_model_leaves_the_image_alone():
    _, noisy = _scene(2)
    np.testing.assert_allclose(lee(noisy, 7, looks=1e12), noisy, rtol=1e-6)
    flat = np.full((20, 20), 0.3)
    np.testing.assert_allclose(refined_lee(flat, LOOKS), flat)
    np.testing.assert_allclose(lee(flat, 5, LOOKS), flat)


def test_point_target_survives():
    rng = np.random.default_rng(3)
    img = 0.05 * rng.gamma(LOOKS, 1.0 / LOOKS, size=(41, 41))
    img[20, 20] = 5.0
    assert uniform_filter(img, 7)[20, 20] < 0.2  # a box filter smears it away
    for out in (lee(img, 7, LOOKS), refined_lee(img, LOOKS)):
        assert out[20, 20] > 0.7 * 5.0


@pytest.mark.parametrize("kwargs, msg", [
    (dict(name="median"), "unknown speckle filter"),
    (dict(name="lee", size=4), "odd"),
    (dict(name="lee", looks=0.0), "looks"),
])
def test_bad_parameters(kwargs, msg):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=msg):
        apply(name, np.ones((9, 9)), **kwargs)
