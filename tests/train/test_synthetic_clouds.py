"""The generated scenes: honest physics (clouds only in optical, speckled SAR, bright buildings,
dark water and tarmac), exact masks, a hidden flag computed from the masks, balanced answers."""
from collections import Counter

import numpy as np
import pytest

from earthmind_sdk.train.data import SyntheticScenes
from earthmind_sdk.train.synthetic import (BROKEN_MAX_COVER, CLOSED_SUBTASKS, HIDDEN_COVER, QUESTIONS,
                                           SPATIAL_REVERSED, _CLOUD_RGB, cloud_cover, make_scene, make_scenes)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(48, seed=3, size=112)


def test_answers_of_every_closed_subtask_are_balanced(scenes):
    answers = {t: Counter(q["answer"] for s in scenes for q in s.qa if q["subtask"] == t) for t in CLOSED_SUBTASKS}
    assert set(answers["existence"]) == {"Yes", "No"}
    assert set(answers["counting"]) == {"Zero", "One", "Two", "Three"}
    assert set(answers["classification"]) == {"forest", "farmland", "urban"}
    assert set(answers["spatial_relation"]) == {"Left", "Right"}
    for counts in answers.values():
        assert max(counts.values()) - min(counts.values()) <= 1


def test_spatial_question_is_asked_both_ways_round(scenes):
    for s in scenes:
        spatial = {q["question"]: q["answer"] for q in s.qa if q["subtask"] == "spatial_relation"}
        if s.water.any() and s.n_buildings:
            water_left = s.water.nonzero()[1].mean() < s.buildings.nonzero()[1].mean()
            assert spatial == {QUESTIONS["spatial_relation"]: "Left" if water_left else "Right",
                               SPATIAL_REVERSED: "Right" if water_left else "Left"}
        else:
            assert not spatial


def test_clouds_hide_optical_only_and_sar_is_unaffected(scenes):
    for s in scenes:
        thick = s.thick_cloud
        if thick.any():  # opaque cloud: the optical ground is gone, whatever lies below
            assert np.allclose(s.optical[:, thick].mean(1), _CLOUD_RGB[:, 0, 0], atol=0.05)
    # SAR over ground under thick cloud has the same statistics as over clear ground
    under, clear = [], []
    for s in scenes:
        if s.land_cover != "farmland":
            continue
        ground = ~(s.water | s.buildings | s.tarmac)
        under.append(s.sar[0][ground & s.thick_cloud])
        clear.append(s.sar[0][ground & ~s.thick_cloud & ~s.thin_cloud])
    under, clear = np.concatenate(under), np.concatenate(clear)
    assert abs(under.mean() / clear.mean() - 1) < 0.1


def test_sar_physics_speckle_double_bounce_and_dark_smooth_surfaces():
    rng = np.random.default_rng(0)
    s = next(s for s in (make_scene(rng, 112, water=True, n_buildings=2, sky="clear") for _ in range(20))
             if s.tarmac.any())
    sar = s.sar[0]
    ground = ~(s.water | s.buildings | s.tarmac)
    assert sar[s.buildings].mean() > 5 * sar[ground].mean()          # double bounce
    assert sar[s.water].mean() < 0.2 * sar[ground].mean()            # specular water
    assert sar[s.tarmac].mean() < 0.2 * sar[ground].mean()           # smooth tarmac looks alike
    # ... while optical tells tarmac (grey) from water (blue) where no cloud veils them
    clear = ~(s.thick_cloud | s.thin_cloud | s.shadow)
    water, tarmac = s.optical[:, s.water & clear], s.optical[:, s.tarmac & clear]
    assert water.shape[1] and tarmac.shape[1]
    assert water[2].mean() > 2 * water[0].mean() and abs(tarmac[2].mean() - tarmac[0].mean()) < 0.03
    # multiplicative 4-look speckle: coefficient of variation ~ 1/sqrt(4) on a uniform surface
    b = sar[s.buildings]
    assert 0.35 < b.std() / b.mean() < 0.65


def test_masks_are_exact_and_the_hidden_flag_comes_from_them(scenes):
    for s in scenes:
        assert not (s.water & s.buildings).any() and not (s.tarmac & (s.water | s.buildings)).any()
        seg = {q["question"]: q for q in s.qa if q["subtask"] == "referring_segmentation"}
        if s.water.any():
            q = seg["Please segment the water body."]
            assert q["mask"] is s.water
            assert q["hidden"] == (cloud_cover(s.water, s.thick_cloud) >= HIDDEN_COVER)
        count = next(q for q in s.qa if q["subtask"] == "counting")
        about = s.buildings if s.n_buildings else np.ones_like(s.buildings)
        assert count["hidden"] == (cloud_cover(about, s.thick_cloud) >= HIDDEN_COVER)
        if s.sky == "overcast":
            assert all(q["hidden"] for q in s.qa)
        if s.sky == "broken":  # broken cloud never hides more than a quarter of an object
            for m in (s.water, s.buildings):
                assert cloud_cover(m, s.thick_cloud) <= BROKEN_MAX_COVER or not m.any()
    assert sum(q["hidden"] for s in scenes for q in s.qa) > 0


def test_building_count_matches_the_mask():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    for n in range(4):
        s = make_scene(rng, 112, n_buildings=n, water=True, sky="clear")
        assert ndimage.label(s.buildings)[1] == n == s.n_buildings


def test_held_out_records_carry_subtask_and_hidden_flag():
    records = list(SyntheticScenes(4, seed=10_000))
    assert {r.meta["task_type"] for r in records} >= {"existence", "counting", "classification"}
    assert all(isinstance(r.meta["hidden"], bool) for r in records)
    assert records[0].sample.images["sar"].data.shape == (1, 112, 112)


def test_building_area_tells_the_count():
    """At four tokens a side buildings merge; their bright area must still separate the counts."""
    areas = {n: [] for n in range(1, 4)}
    for s in make_scenes(96, seed=5):
        if s.n_buildings:
            areas[s.n_buildings].append(int(s.buildings.sum()))
    for n in (1, 2):
        assert max(areas[n]) < min(areas[n + 1]), (n, max(areas[n]), min(areas[n + 1]))


def test_optical_tells_a_roof_from_a_cloud(scenes):
    """Counting without SAR must be possible where clouds do not hide the buildings: clear roofs
    differ from thick cloud by far more than the optical noise (in the blue band above all)."""
    checked = 0
    for s in scenes:
        clear_roof = s.buildings & ~s.thick_cloud & ~s.thin_cloud & ~s.shadow
        if clear_roof.sum() > 20 and s.thick_cloud.any():
            roof, cloud = s.optical[:, clear_roof].mean(1), s.optical[:, s.thick_cloud].mean(1)
            assert cloud[2] - roof[2] > 0.4, (roof, cloud)
            checked += 1
    assert checked >= 5
