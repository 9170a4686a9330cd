"""Segmentation metrics (confusion matrix, IoU) and the dense per-image loss the Ranker ranks.

Hand-worked example used below: K = 3, target / prediction of 8 pixels (255 = ignore)

    target  0 0 0 1 1 2 255 255
    pred    0 0 1 1 2 2  0   1

confusion cm[true, pred] (ignored pixels dropped):
    row 0: [2, 1, 0]; row 1: [0, 1, 1]; row 2: [0, 0, 1]
IoU_0 = 2 / (3 + 2 - 2) = 2/3; IoU_1 = 1 / (2 + 2 - 1) = 1/3; IoU_2 = 1 / (1 + 2 - 1) = 1/2
mIoU = (2/3 + 1/3 + 1/2) / 3 = 0.5; pixel accuracy = 4/6.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tavaal.losses import IGNORE_INDEX, margin_ranking_loss, per_sample_cross_entropy, ranking_loss, task_cross_entropy
from tavaal.metrics import SegmentationMeter, confusion_matrix, iou_per_class, mean_iou, pixel_accuracy

TARGET = torch.tensor([0, 0, 0, 1, 1, 2, 255, 255])
PRED = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])


def test_confusion_matrix_counts_true_rows_and_predicted_columns_without_ignored_pixels():
    cm = confusion_matrix(PRED, TARGET, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert cm.dtype == torch.int64


def test_iou_and_miou_match_the_hand_worked_example():
    cm = confusion_matrix(PRED, TARGET, 3)
    np.testing.assert_allclose(iou_per_class(cm), [2 / 3, 1 / 3, 1 / 2])
    assert mean_iou(cm) == pytest.approx(0.5)
    assert pixel_accuracy(cm) == pytest.approx(4 / 6)


def test_class_absent_from_target_and_prediction_is_excluded_from_the_mean():
    cm = confusion_matrix(PRED, TARGET, 4)  # class 3 never occurs
    iou = iou_per_class(cm)
    assert math.isnan(iou[3])
    assert mean_iou(cm) == pytest.approx(0.5)


def test_class_predicted_but_absent_from_target_counts_as_zero():
    # target all class 0; prediction puts one pixel in class 1 -> IoU_0 = 3/4, IoU_1 = 0
    cm = confusion_matrix(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 0, 0]), 2)
    np.testing.assert_allclose(iou_per_class(cm), [0.75, 0.0])
    assert mean_iou(cm) == pytest.approx(0.375)


def test_everything_ignored_gives_nan_miou():
    cm = confusion_matrix(torch.tensor([0, 1]), torch.tensor([255, 255]), 2)
    assert int(cm.sum()) == 0
    assert math.isnan(mean_iou(cm)) and math.isnan(pixel_accuracy(cm))


def test_confusion_matrix_rejects_out_of_range_labels_and_shape_mismatch():
    with pytest.raises(ValueError, match="target values"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), 3)
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.tensor([0, 1, 2]), torch.tensor([0, 1]), 3)


def test_meter_accumulates_one_matrix_over_batches_from_logits():
    meter = SegmentationMeter(3)
    # two "images" of 4 pixels each = the example split in half, predictions as one-hot logits
    for sl in (slice(0, 4), slice(4, 8)):
        logits = F.one_hot(PRED[sl], 3).T.float().unsqueeze(0).unsqueeze(-1)  # (1, 3, 4, 1)
        meter.update(logits, TARGET[sl].view(1, 4, 1))
    result = meter.compute()
    assert result["miou"] == pytest.approx(0.5)
    assert result["pixels"] == 6
    np.testing.assert_allclose(result["iou"], [2 / 3, 1 / 3, 1 / 2])


# ------------------------------------------------------------------ dense per-image loss
def test_dense_per_sample_loss_is_each_images_mean_ce_over_labeled_pixels():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 2, 2)
    target = torch.tensor([[[0, 1], [255, 2]], [[255, 255], [1, 255]]])
    got = per_sample_cross_entropy(logits, target)
    # by hand: -log softmax at the labeled pixels, averaged per image
    logp = torch.log_softmax(logits, dim=1)
    img0 = -(logp[0, 0, 0, 0] + logp[0, 1, 0, 1] + logp[0, 2, 1, 1]) / 3
    img1 = -logp[1, 1, 1, 0]
    torch.testing.assert_close(got, torch.stack([img0, img1]))


def test_dense_loss_of_a_fully_ignored_image_is_zero_and_gradients_flow():
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    target = torch.full((2, 3, 3), IGNORE_INDEX)
    target[0, 1, 1] = 2
    got = per_sample_cross_entropy(logits, target)
    assert got[1].item() == 0.0 and got[0].item() > 0
    got.sum().backward()
    assert logits.grad[0].abs().sum() > 0 and logits.grad[1].abs().sum() == 0


def test_classification_per_sample_loss_has_no_ignore_value():
    logits = torch.randn(3, 300)
    target = torch.tensor([0, 255, 299])  # 255 is a real class with K = 300
    torch.testing.assert_close(per_sample_cross_entropy(logits, target),
                               F.cross_entropy(logits, target, reduction="none"))


def test_task_loss_is_the_mean_over_all_labeled_pixels_of_the_batch():
    logits = torch.randn(2, 3, 2, 2)
    target = torch.tensor([[[0, 1], [255, 2]], [[255, 255], [1, 255]]])
    expected = F.cross_entropy(logits, target, ignore_index=255)  # 4 labeled pixels
    torch.testing.assert_close(task_cross_entropy(logits, target), expected)
    assert task_cross_entropy(logits, torch.full_like(target, 255)).item() == 0.0


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="need targets"):
        per_sample_cross_entropy(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long))


def test_ranking_and_margin_losses_take_dense_per_image_losses_unchanged():
    logits = torch.randn(4, 3, 5, 5)
    target = torch.randint(0, 3, (4, 5, 5))
    per_image = per_sample_cross_entropy(logits, target)
    pred = torch.randn(4, requires_grad=True)
    ranking_loss(pred, per_image).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert margin_ranking_loss(pred, per_image).item() >= 0


# ------------------------------------------------------------- dense selection scores
@pytest.mark.parametrize("name, key", [("entropy", "logits"), ("margin", "probs"), ("leastconf", "probs")])
def test_uncertainty_score_of_a_segmentation_is_the_mean_of_its_pixel_scores(name, key):
    from tavaal.methods import get_method

    score = get_method(name).rule.score
    logits = torch.randn(3, 4, 5, 6)
    out = {"logits": logits, "probs": torch.softmax(logits, dim=1)}
    per_pixel = torch.stack([score({k: v[:, :, i, j] for k, v in out.items()}) for i in range(5) for j in range(6)],
                            dim=1)
    torch.testing.assert_close(score(out), per_pixel.mean(1))
    assert score(out).shape == (3,)


def test_entropy_of_uniform_pixels_is_log_k():
    from tavaal.methods import get_method

    uniform = torch.zeros(1, 4, 2, 2)
    assert get_method("entropy").rule.score({"logits": uniform}).item() == pytest.approx(math.log(4))


def test_bald_score_of_a_segmentation_is_its_mean_pixel_bald():
    from tavaal.methods.mcdropout import bald_scores

    probs = torch.softmax(torch.randn(5, 2, 3, 4, 4), dim=2)  # (T, N, K, H, W)
    per_pixel = torch.stack([bald_scores(probs[..., i, j]) for i in range(4) for j in range(4)], dim=1)
    torch.testing.assert_close(bald_scores(probs), per_pixel.mean(1))


def test_uint8_masks_are_accepted_as_targets():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    torch.testing.assert_close(per_sample_cross_entropy(logits, target.to(torch.uint8)),
                               per_sample_cross_entropy(logits, target))
