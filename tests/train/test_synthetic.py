import numpy as np

from earthmind_sdk.train.synthetic import LAND_COVER, NUMBER_WORDS, make_scenes


def test_scenes_are_consistent_across_sensors_and_answers():
    scenes = make_scenes(40, seed=3, size=48)
    assert {s.land_cover for s in scenes} == set(LAND_COVER)
    for s in scenes:
        assert s.optical.shape == (3, 48, 48) and s.sar.shape == (1, 48, 48)
        assert s.optical.min() >= 0 and s.optical.max() <= 1 and np.isfinite(s.sar).all()
        qa = {q["question"]: q for q in s.qa}
        assert qa["Is there a water body in this scene?"]["answer"] == ("Yes" if s.water.any() else "No")
        assert qa["How many buildings are there?"]["answer"].lower() == NUMBER_WORDS[s.n_buildings]
        if s.water.any():
            # water is dark in SAR and blue in optical: the two sensors agree on the geometry
            assert s.sar[0][s.water].mean() < 0.2 * s.sar[0][~s.water].mean()
            assert (s.optical[2][s.water] > s.optical[0][s.water]).all()
            seg = qa["Please segment the water body."]
            assert seg["answer"].count("[SEG]") == 1 and seg["mask"] is s.water
        assert not (s.water & s.buildings).any()


def test_generation_is_seeded():
    a, b = make_scenes(3, seed=7), make_scenes(3, seed=7)
    assert all(np.array_equal(x.sar, y.sar) for x, y in zip(a, b))
    c = make_scenes(3, seed=8)
    assert not all(np.array_equal(x.sar, y.sar) for x, y in zip(a, c))


def test_repeat_weights_a_subtask_and_keeps_ids_unique():
    import collections

    import pytest

    from earthmind_sdk.errors import EarthMindError
    from earthmind_sdk.train.data import SyntheticScenes

    plain = list(SyntheticScenes(12, seed=3))
    more = SyntheticScenes(12, seed=3, repeat={"spatial_relation": 3})
    rows = list(more)
    count = lambda rs: collections.Counter(r.meta["task_type"] for r in rs)  # noqa: E731
    assert count(plain)["spatial_relation"] > 0
    assert count(rows)["spatial_relation"] == 3 * count(plain)["spatial_relation"]
    assert count(rows)["existence"] == count(plain)["existence"]
    assert len(rows) == len(more) and len({r.sample.id for r in rows}) == len(rows)
    for bad, why in (({"spatial": 2}, "unknown subtask 'spatial'"), ({"counting": 0}, "counting"),
                     ({"counting": 1.5}, "whole number")):
        with pytest.raises(EarthMindError, match=why):
            SyntheticScenes(2, repeat=bad)
