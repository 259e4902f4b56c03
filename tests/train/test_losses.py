import pytest
import torch

from earthmind_sdk.train.losses import combine, dice_loss, mask_losses, sample_points
from earthmind_sdk.train.trainer import lr_factor


def test_dice_perfect_and_disjoint():
    target = torch.zeros(1, 8, 8)
    target[0, 2:6, 2:6] = 1
    perfect = (target * 2 - 1) * 50  # confident logits
    assert dice_loss(perfect, target).item() < 1e-3
    disjoint = -perfect
    assert dice_loss(disjoint, target).item() > 0.9


def test_mask_losses_decrease_toward_target_and_have_grad():
    g = torch.Generator().manual_seed(0)
    target = torch.zeros(2, 16, 16)
    target[0, :8] = 1
    target[1, :, :4] = 1
    logits = torch.zeros(2, 16, 16, requires_grad=True)
    ce0, d0 = mask_losses(logits, target, num_points=256, generator=g)
    (ce0 + d0).backward()
    assert logits.grad.abs().sum() > 0
    good = (target * 2 - 1) * 10
    ce1, d1 = mask_losses(good, target, num_points=256, generator=g)
    assert ce1 < ce0 and d1 < d0


def test_mask_losses_accept_target_at_other_resolution():
    target = torch.zeros(1, 32, 32)
    target[0, :16] = 1
    logits = torch.full((1, 8, 8), -10.0)
    logits[0, :4] = 10.0
    g = torch.Generator().manual_seed(0)
    ce, dice = mask_losses(logits, target, num_points=512, generator=g)
    ce_wrong, dice_wrong = mask_losses(-logits, target, num_points=512, generator=g)
    # points near the boundary interpolate between the halves, so the right mask is not loss-free
    assert ce < 0.5 and dice < 0.1
    assert ce_wrong > 10 * ce and dice_wrong > 0.9


def test_mask_losses_count_mismatch_and_empty():
    with pytest.raises(ValueError, match="2 predicted masks but 1 target"):
        mask_losses(torch.zeros(2, 4, 4), torch.zeros(1, 4, 4))
    ce, dice = mask_losses(torch.zeros(0, 4, 4, requires_grad=True), torch.zeros(0, 4, 4))
    assert ce.item() == 0 and dice.item() == 0


def test_point_sampling_prefers_uncertain_points():
    logits = torch.full((1, 64, 64), 20.0)
    logits[0, :, 30:34] = 0.0  # an uncertain band covering 1/16 of the image
    pts = sample_points(logits, num_points=400, generator=torch.Generator().manual_seed(1))
    x = pts[0, :, 0] * 64
    in_band = ((x >= 30) & (x < 34)).float().mean()
    assert pts.shape == (1, 400, 2)
    # every oversampled point in the band (3 x 400 / 16 = 75) is kept: ~75/400, vs 1/16 uniform
    assert in_band > 0.15


def test_combine_weights_and_unknown():
    rep = combine({"lm": torch.tensor(2.0), "mask": torch.tensor(1.0)})
    assert rep.total.item() == pytest.approx(2.0 * 1.0 + 1.0 * 2.0)
    assert rep.parts == {"lm": 2.0, "mask": 1.0}
    with pytest.raises(KeyError, match="no weight"):
        combine({"mystery": torch.tensor(1.0)})


def test_lr_schedule_warmup_then_cosine():
    total, warm = 100, 0.1
    f = [lr_factor(s, total, warm) for s in range(total)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert f[-1] < 0.01


def test_causal_lm_loss_on_answer_positions_equals_hf_loss_on_all_logits():
    """The head runs on labelled positions only; the mean over answer tokens must equal what the
    causal LM computes from every position's logits (left padding, answers of different length)."""
    from earthmind_sdk.jobs.open_model import open_model
    from earthmind_sdk.train.trainer import causal_lm_loss

    torch.manual_seed(0)
    model, _ = open_model("tiny")
    lm = model.language_model
    ids = torch.randint(0, 500, (3, 11))
    labels = torch.full_like(ids, -100)
    labels[0, -2:], labels[1, -5:], labels[2, -1:] = ids[0, -2:], ids[1, -5:], ids[2, -1:]
    mask = torch.ones_like(ids)
    mask[2, :4] = 0  # a left-padded row
    out = lm(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=True)
    ours = causal_lm_loss(lm.get_output_embeddings(), out.hidden_states[-1], labels)
    assert torch.allclose(ours, out.loss, atol=1e-6), (ours, out.loss)
    (g,) = torch.autograd.grad(ours, lm.get_output_embeddings().weight, retain_graph=True)
    (g_ref,) = torch.autograd.grad(out.loss, lm.get_output_embeddings().weight)
    assert torch.allclose(g, g_ref, atol=1e-7)
