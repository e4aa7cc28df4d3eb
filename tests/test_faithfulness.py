"""Faithfulness metrics: ROAD's imputation and ROAD against pytorch-grad-cam, deletion/insertion against
per-image references, hand-built cases where the true evidence is known, the sanity checks' contract,
and the assessment of a trained model. The Quantus, Captum and SciPy oracles are in
tests/test_faithfulness_external.py.

Every comparison is made on maps that matter to the model: a check also fails when the map is replaced
by its inverse or by noise (asserted next to the comparison, so a tolerance that would hide that is
caught too).
"""

from __future__ import annotations

import copy
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from faithfulness_inputs import tiny_net, untied_maps
from torch import nn

from batchcam.cam import CamExtractor
from batchcam.data import DatasetSplits, load_shapes
from batchcam.device import select_execution
from batchcam.errors import ConfigError
from batchcam.faithfulness import (
    FaithfulnessSettings,
    assess,
    deletion,
    energy_pointing_game,
    fade,
    insertion,
    mask_share,
    pointing_game,
    road,
    score_images,
)
from batchcam.faithfulness import assessment as assessment_module
from batchcam.faithfulness.assessment import select_subset
from batchcam.faithfulness.imputation import impute
from batchcam.faithfulness.ordering import relevance_ranks
from batchcam.faithfulness.sanity import cascading_randomisation, random_logit
from batchcam.faithfulness.similarity import spearman, ssim
from batchcam.models import build
from batchcam.pipeline import build_model, prepare_data, prototypes_for
from batchcam.spec.image_metrics import check_image_metrics
from batchcam.training import TrainConfig, Trainer


def probabilities(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model(images), dim=1)[torch.arange(len(images)), targets]


# --- imputation (ROAD's noisy linear imputation) against the authors' sparse solver ------------------


def reference_imputation(images: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """ROAD's reference (copied into pytorch-grad-cam): one sparse solve per C×H×W image; its mask is
    1 for the pixels kept and 0 for those imputed."""
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    imputer = NoisyLinearImputer(noise=0)
    with warnings.catch_warnings():  # it hands torch tensors to NumPy functions (NumPy 2 deprecation)
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.stack(
            [imputer(image, (~gone).float()) for image, gone in zip(images, removed, strict=True)]
        )


def removal_masks(kind: str, count: int, height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    if kind == "random":  # one image per density, up to nearly everything removed
        shares = torch.tensor([0.1, 0.5, 0.9, 0.98])[:count].view(-1, 1, 1)
        removed = torch.rand(count, height, width, generator=generator) < shares
        removed[:, 0, 0] = False  # something to impute from
        return removed
    removed = torch.zeros(count, height, width, dtype=torch.bool)
    removed[:, 2:-2, 3:-2] = True  # a hole far from its border: values must travel through it
    removed[1, 1:, :4] = True  # a hole touching the image's border, with the first one
    return removed


# Our solver is float32 conjugate gradients to a relative residual of 1e-5; the reference is a direct
# sparse solve. Observed differences are ≤ 2e-5 on values in [0, 1].
IMPUTATION_TOLERANCE = 1e-4


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kind", ["random", "hole"])
def test_imputation_equals_the_road_reference(channels: int, kind: str) -> None:
    height, width = 13, 17  # not square: rows and columns must not be swapped
    images = torch.rand(4, channels, height, width, generator=torch.Generator().manual_seed(1))
    removed = removal_masks(kind, 4, height, width)
    ours = impute(images, removed, noise=0)
    expected = reference_imputation(images, removed)
    assert ours.shape == images.shape and ours.dtype == images.dtype
    assert (ours - expected).abs().max() <= IMPUTATION_TOLERANCE
    assert torch.equal(ours[~removed[:, None].expand_as(images)], images[~removed[:, None].expand_as(images)])
    # The tolerance is far below what a wrong answer would show: an unconverged solve (one step)
    # and the reference's answer for another mask both miss it by orders of magnitude.
    unconverged = impute(images, removed, noise=0, max_iterations=1)
    assert (unconverged - expected).abs().max() > 100 * IMPUTATION_TOLERANCE
    other = reference_imputation(images, removed.roll(1, dims=2))
    assert (ours - other).abs().max() > 100 * IMPUTATION_TOLERANCE


def test_imputation_noise_touches_only_removed_pixels_and_follows_the_generator() -> None:
    images = torch.rand(3, 2, 20, 18, generator=torch.Generator().manual_seed(0))
    removed = removal_masks("random", 3, 20, 18)
    gone = removed[:, None].expand_as(images)
    clean = impute(images, removed, noise=0)
    noisy = impute(images, removed, noise=0.05, generator=torch.Generator().manual_seed(7))
    again = impute(images, removed, noise=0.05, generator=torch.Generator().manual_seed(7))
    other = impute(images, removed, noise=0.05, generator=torch.Generator().manual_seed(8))
    assert torch.equal(noisy, again)
    assert torch.equal(noisy[~gone], images[~gone])
    added = (noisy - clean)[gone]
    assert len(added) > 500
    assert abs(float(added.std()) - 0.05) < 0.005 and abs(float(added.mean())) < 0.005
    assert (other - noisy)[gone].abs().mean() > 0.03  # another seed, other noise


def test_imputation_needs_a_kept_pixel_and_a_boolean_mask() -> None:
    images = torch.rand(2, 1, 5, 5)
    removed = torch.zeros(2, 5, 5, dtype=torch.bool)
    removed[1] = True
    with pytest.raises(ConfigError, match="keep at least one pixel"):
        impute(images, removed)
    with pytest.raises(ConfigError, match="bool B×H×W"):
        impute(images, torch.zeros(2, 5, 5))


# --- ROAD against pytorch-grad-cam ---------------------------------------------------------------------

ROAD_SHARES = (0.1, 0.25, 0.5, 0.75, 0.9)
ROAD_TOLERANCE = 2e-4  # probabilities; the imputations agree to ~2e-5 (observed ≤ 5e-7 here)


def grad_cam_road(
    order: str,
    share: float,
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
) -> np.ndarray:
    """pytorch-grad-cam's ROAD at the percentile that removes ``share`` of the pixels, without noise.

    Its MoRF(p) imputes the pixels whose map value is at least the p-th percentile, so a removal share
    f is p = 100·(1 − f); its LeRF(p) does the same on 1 − map."""
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirst, ROADMostRelevantFirst
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    kind = ROADMostRelevantFirst if order == "morf" else ROADLeastRelevantFirst
    metric = kind(percentile=round(100 * (1 - share)))
    metric.perturbation.imputer.noise = 0
    oracle_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    with warnings.catch_warnings():  # as in reference_imputation
        warnings.simplefilter("ignore", DeprecationWarning)
        return metric(images, maps.numpy(), oracle_targets, model, return_diff=False)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_road_equals_pytorch_grad_cam(order: str) -> None:
    model = tiny_net(channels=3)
    height, width = 12, 10  # 120 pixels: every share below removes a whole number of them
    images = torch.rand(4, 3, height, width, generator=torch.Generator().manual_seed(2))
    maps = untied_maps(4, height, width, seed=3)
    targets = torch.tensor([0, 1, 2, 3])
    ours = road(model, images, maps, targets, order=order, fractions=ROAD_SHARES, noise=0)
    assert ours.scores.shape == (4, len(ROAD_SHARES))
    assert ours.fractions.tolist() == pytest.approx(list(ROAD_SHARES))
    ranked = maps if order == "morf" else 1 - maps  # what pytorch-grad-cam thresholds
    for share in ROAD_SHARES:  # both remove the same number of pixels: their percentile, our share
        for image in ranked.numpy():
            threshold = np.percentile(image, round(100 * (1 - share)))
            assert int((image >= threshold).sum()) == round(share * height * width)
    expected = np.stack([grad_cam_road(order, s, model, images, maps, targets) for s in ROAD_SHARES], axis=1)
    np.testing.assert_allclose(ours.scores.numpy(), expected, atol=ROAD_TOLERANCE, rtol=0)
    flipped = road(model, images, 1 - maps, targets, order=order, fractions=ROAD_SHARES, noise=0)
    noise = road(model, images, untied_maps(4, height, width, 9), targets, order=order, fractions=ROAD_SHARES)
    assert np.abs(flipped.scores.numpy() - expected).max() > 20 * ROAD_TOLERANCE
    assert np.abs(noise.scores.numpy() - expected).max() > 20 * ROAD_TOLERANCE


def test_road_noise_is_added_and_seeded() -> None:
    model, targets = tiny_net(channels=3), torch.tensor([0, 1, 2, 3])
    images = torch.rand(4, 3, 12, 10, generator=torch.Generator().manual_seed(2))
    maps = untied_maps(4, 12, 10, seed=3)

    def run(noise: float, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return road(model, images, maps, targets, order="morf", noise=noise, generator=generator).scores

    assert torch.equal(run(0.1, 0), run(0.1, 0))
    assert (run(0.1, 0) - run(0.1, 1)).abs().max() > 1e-3
    assert (run(0.1, 0) - run(0.0, 0)).abs().max() > 1e-3


def test_road_rejects_unknown_orders_and_shares_outside_the_open_interval() -> None:
    model, images, maps = tiny_net(), torch.rand(1, 1, 6, 6), torch.rand(1, 6, 6)
    with pytest.raises(ConfigError, match="unknown ROAD order"):
        road(model, images, maps, torch.tensor([0]), order="both")  # type: ignore[arg-type]
    for shares in [(), (0.0, 0.5), (0.5, 1.0)]:
        with pytest.raises(ConfigError, match="strictly between 0 and 1"):
            road(model, images, maps, torch.tensor([0]), order="morf", fractions=shares)


# --- deletion and insertion against a per-image, per-step reference ----------------------------------


def baseline_image(image: torch.Tensor, baseline: str) -> torch.Tensor:
    """What a removed pixel of one C×H×W image becomes."""
    if baseline == "zero":
        return torch.zeros_like(image)
    if baseline == "mean":
        return image.mean(dim=(1, 2), keepdim=True).expand_as(image)
    return TF.gaussian_blur(image, [11, 11], [5.0, 5.0])  # RISE's blur: 11×11 kernel, σ = 5


def per_image_curves(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    baseline: str,
    steps: int,
    inserting: bool,
) -> np.ndarray:
    """One image and one step at a time: point k has the round(k/steps · N) pixels of highest map value
    (all their channels) taken from the end image (baseline for deletion, the image for insertion)."""
    curves = []
    for image, heatmap, target in zip(images, maps, targets, strict=True):
        base = baseline_image(image, baseline)
        start, end = (base, image) if inserting else (image, base)
        order = torch.from_numpy(np.argsort(-heatmap.flatten().numpy(), kind="stable"))
        pixels = heatmap.numel()
        values = []
        for k in range(steps + 1):
            chosen = torch.zeros(pixels, dtype=torch.bool)
            chosen[order[: round(k * pixels / steps)]] = True
            perturbed = torch.where(chosen.view(1, *heatmap.shape), end, start)
            values.append(float(probabilities(model, perturbed[None], target.view(1))[0]))
        curves.append(values)
    return np.array(curves)


@pytest.mark.parametrize(
    ("kind", "baseline"),
    [
        ("deletion", "zero"),
        ("deletion", "mean"),
        ("deletion", "blur"),
        ("insertion", "blur"),
        ("insertion", "zero"),
    ],
)
def test_deletion_and_insertion_equal_a_per_image_reference(kind: str, baseline: str) -> None:
    model = tiny_net(channels=3)
    images = torch.rand(3, 3, 16, 14, generator=torch.Generator().manual_seed(4))
    maps = untied_maps(3, 16, 14, seed=5)
    targets = torch.tensor([2, 0, 1])
    steps = 9  # 224 pixels: 24.9 per step, so the rounding of each step's count matters
    run = deletion if kind == "deletion" else insertion
    # max_batch 8 with 3 images: two steps per forward pass, five passes.
    curves = run(model, images, maps, targets, steps=steps, baseline=baseline, max_batch=8)  # type: ignore[operator]
    expected = per_image_curves(model, images, maps, targets, baseline, steps, kind == "insertion")
    fractions = np.arange(steps + 1) / steps
    np.testing.assert_allclose(curves.fractions.numpy(), fractions, atol=1e-7)
    np.testing.assert_allclose(curves.scores.numpy(), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(curves.auc().numpy(), np.trapezoid(expected, fractions, axis=1), atol=1e-5)
    for other in (1 - maps, untied_maps(3, 16, 14, seed=6)):
        wrong = per_image_curves(model, images, other, targets, baseline, steps, kind == "insertion")
        assert np.abs(wrong - expected).max() > 1e-2


def test_fade_moves_every_pixel_toward_the_baseline_in_equal_steps() -> None:
    model = tiny_net(channels=3)
    images = torch.rand(3, 3, 16, 14, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([2, 0, 1])
    steps = 4
    faded = fade(model, images, targets, inserting=False, steps=steps, baseline="zero", max_batch=5)
    assert faded.scores.shape == (3, steps + 1)
    assert torch.allclose(faded.scores[:, 0], probabilities(model, images, targets), atol=1e-6)
    assert torch.allclose(
        faded.scores[:, -1], probabilities(model, torch.zeros_like(images), targets), atol=1e-6
    )
    assert torch.allclose(faded.scores[:, 1], probabilities(model, 0.75 * images, targets), atol=1e-6)
    blurred = TF.gaussian_blur(images, [11, 11], [5.0, 5.0])
    grown = fade(model, images, targets, inserting=True, steps=steps, baseline="blur")
    assert torch.allclose(grown.scores[:, 0], probabilities(model, blurred, targets), atol=1e-6)
    assert torch.allclose(grown.scores[:, -1], probabilities(model, images, targets), atol=1e-6)
    assert torch.allclose(
        grown.scores[:, 2], probabilities(model, (blurred + images) / 2, targets), atol=1e-6
    )
    # A map's deletion curve has the same end points but not the same path.
    mapped = deletion(model, images, untied_maps(3, 16, 14, seed=5), targets, steps=steps)
    assert torch.allclose(mapped.scores[:, [0, -1]], faded.scores[:, [0, -1]], atol=1e-6)
    assert (mapped.scores[:, 1:-1] - faded.scores[:, 1:-1]).abs().max() > 1e-2


def test_metrics_score_the_model_in_eval_mode_and_leave_its_modes_as_found() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))
    images, maps = torch.rand(3, 1, 8, 8), untied_maps(3, 8, 8, seed=0)
    targets = torch.tensor([0, 1, 2])
    with torch.no_grad():
        model.train()
        model(3 * images)  # running statistics unlike any batch's own
    model[2].eval()  # a mixed state, BatchNorm in train mode
    modes = [module.training for module in model.modules()]
    evaluated = probabilities(copy.deepcopy(model).eval(), images, targets)
    curves = [
        deletion(model, images, maps, targets, steps=2),
        fade(model, images, targets, inserting=False, steps=2),
        road(model, images, maps, targets, order="morf", fractions=(0.5,), noise=0),
    ]
    assert [module.training for module in model.modules()] == modes
    assert torch.allclose(curves[0].scores[:, 0], evaluated, atol=1e-6)
    assert torch.allclose(curves[1].scores[:, 0], evaluated, atol=1e-6)
    in_train_mode = probabilities(copy.deepcopy(model), images, targets)
    assert not torch.allclose(in_train_mode, evaluated, atol=1e-3)  # so the mode matters here


def test_deletion_checks_its_inputs() -> None:
    model, images = tiny_net(), torch.rand(2, 1, 6, 6)
    targets = torch.tensor([0, 1])
    with pytest.raises(ConfigError, match="maps must be B×H×W"):
        deletion(model, images, torch.rand(2, 5, 6), targets)
    with pytest.raises(ConfigError, match="one target class per image"):
        insertion(model, images, torch.rand(2, 6, 6), targets[:1])
    with pytest.raises(ConfigError, match="float B×C×H×W"):
        deletion(model, (images * 255).byte(), torch.rand(2, 6, 6), targets)
    with pytest.raises(ConfigError, match="steps must be at least 1"):
        deletion(model, images, torch.rand(2, 6, 6), targets, steps=0)
    with pytest.raises(ConfigError, match="unknown baseline"):
        deletion(model, images, torch.rand(2, 6, 6), targets, baseline="white")  # type: ignore[arg-type]


def test_ties_are_broken_in_a_seeded_random_order_below_the_relevant_pixels() -> None:
    maps = torch.zeros(2, 4, 4)
    maps[:, 0, :2] = 1.0  # two relevant pixels, fourteen tied below them
    ranks = relevance_ranks(maps, torch.Generator().manual_seed(0))
    assert sorted(ranks[0].tolist()) == list(range(16))
    assert set(ranks[:, :2].flatten().tolist()) == {0, 1}  # the relevant pixels come first
    tied = relevance_ranks(maps, torch.Generator().manual_seed(0))[:, 2:]
    assert not torch.equal(tied[0], tied[1])  # each image draws its own order of the ties
    assert not torch.equal(tied, relevance_ranks(maps, torch.Generator().manual_seed(1))[:, 2:])


# --- a model whose evidence is known: good maps must beat their inverse and noise ------------------------

SIZE = 16
SQUARE = (slice(4, 10), slice(5, 11))  # 36 of 256 pixels


def square_model() -> nn.Module:
    """Two classes; class 0's logit is 0.3 × (sum of the pixels inside SQUARE) − 7, class 1's is 0."""
    inside = torch.zeros(SIZE, SIZE)
    inside[SQUARE] = 1
    model = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[0] = 0.3 * inside.flatten()
        model[1].bias.copy_(torch.tensor([-7.0, 0.0]))
    return model.eval()


def square_images(count: int) -> torch.Tensor:
    """A dark textured background with a bright square: class 0 with high confidence."""
    generator = torch.Generator().manual_seed(11)
    images = 0.2 * torch.rand(count, 1, SIZE, SIZE, generator=generator)
    images[:, :, SQUARE[0], SQUARE[1]] = 0.7 + 0.3 * torch.rand(count, 1, 6, 6, generator=generator)
    return images


def square_maps(count: int) -> dict[str, torch.Tensor]:
    good = torch.zeros(count, SIZE, SIZE)
    good[:, SQUARE[0], SQUARE[1]] = 1.0
    noise = torch.rand(count, SIZE, SIZE, generator=torch.Generator().manual_seed(12))
    return {"good": good, "inverse": 1 - good, "noise": noise}


def test_maps_of_the_true_evidence_beat_their_inverse_and_noise_on_every_metric() -> None:
    model, images, targets = square_model(), square_images(4), torch.zeros(4, dtype=torch.long)
    assert (probabilities(model, images, targets) > 0.85).all()
    maps = square_maps(4)

    def scores(name: str, kind: str) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        if kind in ("morf", "lerf"):
            return road(model, images, maps[name], targets, order=kind, generator=generator).mean()  # type: ignore[arg-type]
        run = deletion if kind == "deletion" else insertion
        return run(model, images, maps[name], targets, generator=generator).auc()

    deleted = {name: scores(name, "deletion") for name in maps}
    inserted = {name: scores(name, "insertion") for name in maps}
    morf = {name: scores(name, "morf") for name in maps}
    lerf = {name: scores(name, "lerf") for name in maps}
    for worse in ("inverse", "noise"):  # per image, with a clear margin
        assert (deleted["good"] < deleted[worse] - 0.1).all(), (deleted, worse)
        assert (inserted["good"] > inserted[worse] + 0.1).all(), (inserted, worse)
        assert (morf["good"] < morf[worse] - 0.1).all(), (morf, worse)
        assert (lerf["good"] > lerf[worse] + 0.1).all(), (lerf, worse)
    # By hand: the first deletion step blacks out 13 of the 36 square pixels (logit 2.2 → about −1.1),
    # the second 26 (about −4.4), the third all of them, so the area is about 0.05 · (0.89/2 + 0.25 +
    # 0.01) ≈ 0.036; the inverse map deletes the 220 background pixels first (17 of 20 steps at 0.89).
    assert (deleted["good"] < 0.06).all() and (deleted["inverse"] > 0.75).all()


def test_score_images_reports_each_metric_against_a_random_map() -> None:
    model, images, targets = square_model(), square_images(3), torch.zeros(3, dtype=torch.long)
    maps = square_maps(3)
    metrics = ["deletion", "insertion", "road_morf", "road_lerf"]
    scored = score_images(model, images, maps["good"], targets, metrics, seed=3, steps=10)
    assert len(scored) == 3
    for entry in scored:
        assert list(entry) == metrics
        for name, result in entry.items():
            assert set(result) == {"score", "random", "better", "curve"}
            assert result["better"] == ("lower" if name in ("deletion", "road_morf") else "higher")
            sign = 1 if result["better"] == "higher" else -1
            assert sign * (result["score"] - result["random"]) > 0.1, (name, result)
            values, fractions = result["curve"]["values"], result["curve"]["fractions"]
            if name.startswith("road"):
                assert len(values) == 9 and result["score"] == pytest.approx(np.mean(values), abs=1e-6)
            else:
                assert len(values) == 11 and fractions[0] == 0 and fractions[-1] == pytest.approx(1)
                assert result["score"] == pytest.approx(np.trapezoid(values, fractions), abs=1e-6)
    assert score_images(model, images, maps["good"], targets, metrics, seed=3, steps=10) == scored
    reseeded = score_images(model, images, maps["good"], targets, metrics, seed=4, steps=10)
    assert [e["deletion"]["random"] for e in reseeded] != [e["deletion"]["random"] for e in scored]
    inverse = score_images(model, images, maps["inverse"], targets, ["deletion", "road_lerf"], seed=3)
    assert all(e["deletion"]["score"] > e["deletion"]["random"] for e in inverse)  # worse than random
    assert all(e["road_lerf"]["score"] < e["road_lerf"]["random"] for e in inverse)
    assert score_images(model, images, maps["good"], targets, []) == [{}, {}, {}]


def test_check_image_metrics_names_the_accepted_metrics() -> None:
    assert check_image_metrics(["road_lerf", "deletion", "road_lerf"]) == ["road_lerf", "deletion"]
    with pytest.raises(ConfigError, match=r"'pixel_flipping'.*accepted: deletion, insertion") as raised:
        check_image_metrics(["deletion", "pixel_flipping"])
    assert raised.value.code == "unknown_faithfulness_metric"
    with pytest.raises(ConfigError) as raised:
        score_images(square_model(), square_images(1), square_maps(1)["good"], torch.tensor([0]), ["auc"])
    assert raised.value.code == "unknown_faithfulness_metric"


# --- localisation: hand cases (the Quantus comparison is in test_faithfulness_external.py) ---------------


def test_pointing_and_energy_games_by_hand() -> None:
    maps = torch.tensor(
        [
            [[3.0, 1.0], [0.0, 0.0]],  # peak inside, 3/4 of the mass inside
            [[0.0, 1.0], [3.0, 3.0]],  # roughly the inverse: peaks outside, no mass inside
            [[2.0, 2.0], [0.0, 0.0]],  # a tie between a pixel inside and one outside: half a hit
            [[5.0, 1.0], [1.0, 1.0]],  # an empty mask: no answer
            [[1.0, -3.0], [0.0, 0.0]],  # negative relevance carries no mass
            [[0.0, 0.0], [0.0, 0.0]],  # no mass at all: every pixel ties, a quarter of them inside
        ]
    )
    masks = torch.tensor([[[True, False], [False, False]]]).repeat(6, 1, 1)
    masks[3] = False
    pointing = pointing_game(maps, masks)
    energy = energy_pointing_game(maps, masks)
    assert pointing[[0, 1, 2, 4, 5]].tolist() == [1.0, 0.0, 0.5, 1.0, 0.25] and pointing[3].isnan()
    assert energy[[0, 1, 2, 4, 5]].tolist() == pytest.approx([0.75, 0.0, 0.5, 1.0, 0.0])
    assert energy[3].isnan()
    with pytest.raises(ConfigError, match="must match"):
        pointing_game(maps, masks.float())


def test_a_map_peaked_inside_the_mask_wins_both_games_and_its_inverse_loses_them() -> None:
    rows, cols = torch.meshgrid(torch.arange(12.0), torch.arange(10.0), indexing="ij")
    bump = torch.exp(-((rows - 3) ** 2 + (cols - 4) ** 2) / 8)[None]
    mask = torch.zeros(1, 12, 10, dtype=torch.bool)
    mask[:, 1:6, 2:7] = True  # 25 of 120 pixels
    assert pointing_game(bump, mask).item() == 1.0 and pointing_game(1 - bump, mask).item() == 0.0
    assert energy_pointing_game(bump, mask).item() > 0.6
    assert energy_pointing_game(1 - bump, mask).item() < 25 / 120


def test_mask_share_sums_absolute_attributions_over_channels() -> None:
    attributions = torch.tensor([[[[1.0, -2.0], [0.0, 0.0]], [[-1.0, 0.0], [0.0, 2.0]]]])  # 1×2×2×2
    mask = torch.tensor([[[True, False], [False, False]]])
    # |·| per channel, then summed: [[2, 2], [0, 2]] → 2 of 6 inside (a signed sum would give 0).
    assert mask_share(attributions, mask).item() == pytest.approx(1 / 3)
    assert mask_share(attributions.sum(dim=1), mask).item() == pytest.approx(0.0)
    assert mask_share(-attributions[:, 1], mask).item() == pytest.approx(1 / 3)  # B×H×W: |·| too


# --- sanity checks ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_like() -> nn.Module:
    """simple_cnn with non-trivial BatchNorm statistics (fresh statistics are the identity)."""
    torch.manual_seed(0)
    model = build("simple_cnn", num_classes=4)
    with torch.no_grad():
        model.train()
        model(torch.rand(16, 1, 28, 28))
    return model.eval()


def test_cascading_randomisation_leaves_the_model_and_the_random_state_alone(trained_like) -> None:
    model = trained_like
    images = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 2, 0, 1, 2])  # class 3's maps are often constant (all ReLU-d away) here
    before = copy.deepcopy(model.state_dict())
    state = torch.get_rng_state()
    steps = cascading_randomisation(model, images, targets, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before) and list(after) == list(before)
    assert not model.training
    assert [step.module for step in steps] == [
        "head.2",
        "features.5.1",
        "features.5.0",
        "features.4.1",
        "features.4.0",
        "features.2.1",
        "features.2.0",
        "features.0.1",
        "features.0.0",
    ]
    for step in steps:
        assert step.similarity.spearman.shape == step.similarity.ssim.shape == (6,)
    # Re-initialising the output layer already changes the maps, and the fully random model's maps
    # are far from the trained ones.
    assert float(steps[0].similarity.spearman.nanmean()) < 0.95
    assert float(steps[-1].similarity.spearman.nanmean()) < 0.5
    assert float(steps[-1].similarity.ssim.mean()) < 0.5
    # The original maps against themselves: what a model-independent map would score at every step.
    original = CamExtractor(model)(images, targets).maps
    assert spearman(original, original).tolist() == pytest.approx([1.0] * 6)
    assert ssim(original, original).tolist() == pytest.approx([1.0] * 6, abs=1e-5)
    repeated = cascading_randomisation(model, images, targets, seed=0)
    reseeded = cascading_randomisation(model, images, targets, seed=1)
    assert torch.equal(repeated[-1].similarity.ssim, steps[-1].similarity.ssim)
    assert not torch.equal(reseeded[-1].similarity.ssim, steps[-1].similarity.ssim)


class RecordingExtractor:
    """Stands in for a CamExtractor: records the classes asked for and returns noise maps."""

    def __init__(self) -> None:
        self.model = nn.Linear(1, 1)
        self.asked: list[torch.Tensor] = []

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> SimpleNamespace:
        self.asked.append(targets.clone())
        return SimpleNamespace(maps=torch.rand(len(images), 16, 16))


def test_random_logit_always_asks_for_another_class() -> None:
    extractor = RecordingExtractor()
    targets = torch.arange(300) % 3
    generator = torch.Generator().manual_seed(0)
    random_logit(extractor, torch.rand(300, 1, 4, 4), targets, 3, generator)  # type: ignore[arg-type]
    explained, other = extractor.asked
    assert torch.equal(explained, targets)
    assert (other != targets).all() and other.min() >= 0 and other.max() <= 2
    for target in range(3):  # both other classes are drawn for every class
        assert set(other[targets == target].tolist()) == set(range(3)) - {target}
    with pytest.raises(ConfigError, match="at least two classes"):
        random_logit(extractor, torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), 1)  # type: ignore[arg-type]


def test_random_logit_finds_maps_that_ignore_the_class(trained_like) -> None:
    images = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 2, 0, 1, 2])  # class 3's maps are often constant (all ReLU-d away) here
    distinct = random_logit(CamExtractor(trained_like), images, targets, 4, torch.Generator().manual_seed(0))
    blind = copy.deepcopy(trained_like)
    with torch.no_grad():  # every class gets the same output weights: every class has the same map
        blind.head[2].weight.copy_(blind.head[2].weight[:1].expand_as(blind.head[2].weight))
        blind.head[2].bias.fill_(0.1)
    same = random_logit(CamExtractor(blind), images, targets, 4, torch.Generator().manual_seed(0))
    assert same.spearman.tolist() == pytest.approx([1.0] * 6)
    assert same.ssim.tolist() == pytest.approx([1.0] * 6, abs=1e-5)
    assert float(distinct.spearman.nanmean()) < 0.8 and float(distinct.ssim.mean()) < 0.8


# --- the assessment of a trained model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_shapes() -> tuple[nn.Module, DatasetSplits]:
    config = TrainConfig(mode="baseline", epochs=2, batch_size=32, seed=1, device="cpu", precision="fp32")
    splits = prepare_data(config, splits=load_shapes(seed=0, n_train=1200, n_test=200))
    model = build_model(config, splits).model
    execution = select_execution("cpu", "fp32")
    Trainer(model, splits.train, splits.test, prototypes_for(splits.train), config, execution, []).fit()
    return model.eval(), splits


@pytest.mark.slow
def test_assessment_of_a_trained_model(trained_shapes) -> None:
    model, splits = trained_shapes
    settings = FaithfulnessSettings(images=32, sanity_images=8)
    extractor = CamExtractor(model)
    assessment = assess(extractor, splits.test, select_execution("cpu", "fp32"), settings)
    assert assessment is not None
    summary = assessment.summary
    assert {"deletion", "insertion", "road", "localisation", "sanity", "subset"} <= set(summary)
    indices = summary["subset"]["indices"]
    assert indices == select_subset(len(splits.test), settings).tolist() == sorted(set(indices))
    assert len(indices) == 32 and summary["subset"]["seed"] == 0
    assert indices != select_subset(len(splits.test), FaithfulnessSettings(images=32, seed=1)).tolist()
    # The recorded indices are the images assessed: the subset's accuracy is reproducible from them.
    images, labels = splits.test[torch.tensor(indices)]
    with torch.no_grad():
        predicted = model(images.float() / 255).argmax(dim=1)
    assert summary["accuracy_on_subset"] == pytest.approx(float((predicted == labels).float().mean()))
    # The trained CAMs are clearly better than random maps on the same images.
    deleted, inserted, roads = summary["deletion"], summary["insertion"], summary["road"]
    assert deleted["auc"]["map"] < deleted["auc"]["random"] - 0.01, deleted
    assert inserted["auc"]["map"] > inserted["auc"]["random"] + 0.05, inserted
    assert roads["combined"]["map"] > roads["combined"]["random"] + 0.05, roads
    assert deleted["gain_over_random"] > 0 and inserted["gain_over_random"] > 0
    objects = summary["localisation"]["object"]
    assert objects["pointing"]["map"] > objects["pointing"]["random"]
    assert objects["energy"]["map"] > objects["energy"]["random"]
    sanity = summary["sanity"]
    assert sanity["images"] == 8 and len(sanity["cascading_randomisation"]) == 9
    assert sanity["cascading_randomisation"][0]["module"] == "head.2"
    assert sanity["fully_randomised"]["spearman"] < 0.5
    assert set(assessment.curves) == {"deletion", "insertion", "road_morf", "road_lerf"}
    assert len(assessment.curves["deletion"].curves["map"]) == settings.steps + 1
    assert (
        assess(extractor, splits.test, select_execution("cpu", "fp32"), FaithfulnessSettings(images=0))
        is None
    )


@pytest.mark.slow
def test_assessment_in_chunks_measures_what_one_pass_does(trained_shapes, monkeypatch) -> None:
    """Large images are assessed a few at a time; the per-image measures must not depend on that,
    except for the random draws (maps, tie order, ROAD noise), which a chunk consumes in its turn."""
    model, splits = trained_shapes
    settings = FaithfulnessSettings(images=24, sanity_images=4, steps=5)
    execution = select_execution("cpu", "fp32")
    whole = assess(CamExtractor(model), splits.test, execution, settings)
    monkeypatch.setattr(assessment_module, "CHUNK_VALUES", 28 * 28 * 5)  # chunks of 5 images
    chunked = assess(CamExtractor(model), splits.test, execution, settings)
    assert whole is not None and chunked is not None
    for name in ("deletion", "insertion"):
        chunked_auc, whole_auc = chunked.summary[name]["auc"], whole.summary[name]["auc"]
        assert chunked_auc["uniform"] == pytest.approx(whole_auc["uniform"], abs=1e-6)  # draws nothing
        assert chunked_auc["map"] == pytest.approx(whole_auc["map"], abs=0.02)  # only ties' order is drawn
    assert chunked.summary["accuracy_on_subset"] == whole.summary["accuracy_on_subset"]
    assert chunked.summary["subset"] == whole.summary["subset"]
    objects = chunked.summary["localisation"]["object"]
    objects_whole = whole.summary["localisation"]["object"]
    assert objects["energy"]["map"] == pytest.approx(objects_whole["energy"]["map"], abs=1e-6)
    assert objects["mask_area"] == pytest.approx(objects_whole["mask_area"], abs=1e-9)
    assert len(chunked.curves["deletion"].curves["map"]) == settings.steps + 1
