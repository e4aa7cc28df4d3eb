"""Faithfulness metrics against independent implementations: Quantus (pixel flipping, pointing game,
relevance mass accuracy), SciPy (average ranks, Spearman's ρ) and Captum (saliency, Integrated
Gradients, SmoothGrad's noise tunnel).

Each comparison also shows that it would catch a wrong map: the oracle's answer for the inverse map (or
noise) is far outside the tolerance.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from faithfulness_inputs import tiny_net, untied_maps
from torch import nn

from batchcam.errors import ConfigError
from batchcam.faithfulness import deletion, energy_pointing_game, pointing_game
from batchcam.faithfulness.attribution import input_gradients, integrated_gradients, smoothgrad
from batchcam.faithfulness.similarity import average_ranks, spearman, ssim

# --- deletion against Quantus' pixel flipping ---------------------------------------------------------


def quantus_pixel_flipping(
    model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, per_step: int
) -> np.ndarray:
    """Quantus' curve: softmax probability after each block of ``per_step`` pixels (most relevant first)
    is set to 0; it has no point for the untouched image. Its "black" baseline is each image's minimum,
    so the baseline is given as the value 0; no normalisation (it would not change the order anyway)."""
    import quantus

    metric = quantus.PixelFlipping(
        features_in_step=per_step, perturb_baseline=0.0, normalise=False, abs=False, disable_warnings=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves = metric(
            model=model,
            x_batch=images.numpy(),
            y_batch=targets.numpy(),
            a_batch=maps[:, None].numpy(),
            channel_first=True,
            softmax=True,
            device="cpu",
        )
    return np.array(curves)


def test_deletion_equals_quantus_pixel_flipping() -> None:
    model = tiny_net()
    images = torch.rand(5, 1, 12, 10, generator=torch.Generator().manual_seed(0))
    maps = untied_maps(5, 12, 10, seed=1)
    targets = torch.tensor([0, 1, 2, 3, 0])
    ours = deletion(model, images, maps, targets, steps=10, baseline="zero")
    expected = quantus_pixel_flipping(model, images, maps, targets, per_step=12)
    assert expected.shape == (5, 10)
    np.testing.assert_allclose(ours.scores[:, 1:].numpy(), expected, atol=1e-6, rtol=0)
    with torch.no_grad():
        untouched = torch.softmax(model(images), dim=1)[torch.arange(5), targets]
    assert torch.allclose(ours.scores[:, 0], untouched, atol=1e-6)
    for other in (1 - maps, untied_maps(5, 12, 10, seed=2)):
        assert np.abs(quantus_pixel_flipping(model, images, other, targets, 12) - expected).max() > 1e-2


# --- localisation against Quantus --------------------------------------------------------------------------


def quantus_localisation(maps: torch.Tensor, masks: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Quantus' PointingGame and RelevanceMassAccuracy (no normalisation, no abs); the model and the
    images are required arguments but unused."""
    import quantus

    arguments = {
        "model": tiny_net(),
        "x_batch": torch.rand(len(maps), 1, *maps.shape[1:]).numpy(),
        "y_batch": np.zeros(len(maps), dtype=np.int64),
        "a_batch": maps[:, None].numpy(),
        "s_batch": masks[:, None].numpy().astype(np.float32),
        "channel_first": True,
        "device": "cpu",
    }
    options = {"normalise": False, "abs": False, "disable_warnings": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pointing = quantus.PointingGame(**options)(**arguments)
        mass = quantus.RelevanceMassAccuracy(**options)(**arguments)
    return np.array(pointing, dtype=np.float64), np.array(mass, dtype=np.float64)


def test_pointing_and_energy_games_equal_quantus() -> None:
    count, height, width = 8, 12, 10
    maps = untied_maps(count, height, width, seed=3)
    generator = torch.Generator().manual_seed(4)
    masks = torch.rand(count, height, width, generator=generator) < 0.3
    peaks = maps.flatten(1).argmax(dim=1)
    for image in range(count):  # the peak inside the mask for half the images, outside for the rest
        masks[image].view(-1)[peaks[image]] = image % 2 == 0
    expected_pointing, expected_mass = quantus_localisation(maps, masks)
    pointing, energy = pointing_game(maps, masks), energy_pointing_game(maps, masks)
    assert pointing.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    np.testing.assert_array_equal(pointing.numpy(), expected_pointing)
    # Ties differ on purpose: Quantus counts any tied maximum inside as a hit, we count the share.
    maps[7].view(-1)[(peaks[7] + 1) % (height * width)] = maps[7].max()
    masks[7].view(-1)[(peaks[7] + 1) % (height * width)] = True  # one tied peak inside, one outside
    assert (
        float(quantus_localisation(maps, masks)[0][7]) == 1.0 and float(pointing_game(maps, masks)[7]) == 0.5
    )
    np.testing.assert_allclose(energy.numpy(), expected_mass, atol=1e-6, rtol=0)
    inverse_pointing, inverse_mass = quantus_localisation(1 - maps, masks)
    assert (inverse_pointing != expected_pointing).any()
    assert np.abs(inverse_mass - energy.numpy()).max() > 1e-2


# --- ranks and Spearman's ρ against SciPy ------------------------------------------------------------------


def test_average_ranks_equal_scipy_with_many_ties() -> None:
    generator = torch.Generator().manual_seed(0)
    values = torch.cat(
        [
            torch.randint(0, 5, (4, 60), generator=generator).double(),  # about 12 ties per value
            torch.rand(1, 60, generator=generator).double(),  # no ties
            torch.full((1, 60), 0.5, dtype=torch.float64),  # one tie of everything
        ]
    )
    ranks = average_ranks(values)
    for row, ranked in zip(values, ranks, strict=True):
        np.testing.assert_array_equal(ranked.numpy(), scipy.stats.rankdata(row.numpy(), method="average") - 1)
    assert not torch.equal(average_ranks(-values[:1]), ranks[:1])


def test_spearman_equals_scipy() -> None:
    generator = torch.Generator().manual_seed(1)
    first = torch.round(4 * torch.rand(5, 9, 7, generator=generator)) / 4  # five levels: many ties
    second = first + 0.4 * torch.rand(5, 9, 7, generator=generator)
    second[4] = torch.rand(9, 7, generator=generator)  # unrelated
    ours = spearman(first, second)
    expected = [
        scipy.stats.spearmanr(a.flatten().numpy(), b.flatten().numpy()).statistic
        for a, b in zip(first, second, strict=True)
    ]
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-6, rtol=0)
    assert ours[:4].min() > 0.5 and abs(float(ours[4])) < 0.4
    assert spearman(first, -first).tolist() == pytest.approx([-1.0] * 5)  # the inverse: −1, not +1
    constant = spearman(first[:2], torch.stack([torch.full((9, 7), 0.3), second[1]]))
    assert constant[0].isnan() and not constant[1].isnan()


def test_ssim_is_one_for_identical_maps_and_low_for_inverse_or_noise() -> None:
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centres = torch.tensor([[8.0, 9.0], [14.0, 20.0], [20.0, 6.0]])
    maps = torch.exp(-((rows - centres[:, :1, None]) ** 2 + (cols - centres[:, 1:, None]) ** 2) / 30)
    assert ssim(maps, maps).tolist() == pytest.approx([1.0] * 3, abs=1e-5)
    assert (ssim(maps, 1 - maps) < 0).all()
    assert (ssim(maps, torch.rand(3, 28, 28, generator=torch.Generator().manual_seed(3))) < 0.5).all()


# --- input-space attributions against Captum ----------------------------------------------------------------


def attribution_net() -> nn.Module:
    """float64, with BatchNorm (its statistics differ from a batch's) and a non-linearity."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 3),
    ).double()
    with torch.no_grad():
        model.train()
        model(3 * torch.rand(16, 2, 9, 8, dtype=torch.float64))
    return model


def test_input_gradients_and_integrated_gradients_equal_captum() -> None:
    from captum.attr import IntegratedGradients, Saliency

    model = attribution_net()
    model.train()
    model[2].eval()  # a mixed state must come back as it was; BatchNorm stays in train mode
    modes = [module.training for module in model.modules()]
    oracle = copy.deepcopy(model).eval()
    images = torch.rand(4, 2, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    baselines = 0.5 * torch.rand(4, 2, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([0, 1, 2, 1])

    gradients = input_gradients(model, images, targets)
    expected = Saliency(oracle).attribute(images.clone(), target=targets, abs=False)
    assert gradients.shape == images.shape and gradients.dtype == torch.float64
    assert (gradients - expected).abs().max() <= 1e-10 < expected.abs().max() * 1e-3

    ig = IntegratedGradients(oracle)
    for start in (None, baselines):
        ours = integrated_gradients(model, images, targets, steps=7, baselines=start, max_batch=10)
        theirs = ig.attribute(
            images.clone(), baselines=start, target=targets, n_steps=7, method="riemann_middle"
        )
        assert (ours - theirs).abs().max() <= 1e-6  # Captum builds its step fractions in float32
        other_target = ig.attribute(
            images.clone(), baselines=start, target=(targets + 1) % 3, n_steps=7, method="riemann_middle"
        )
        assert (ours - other_target).abs().max() > 1e-3
    coarser = ig.attribute(images.clone(), target=targets, n_steps=3, method="riemann_middle")
    assert (integrated_gradients(model, images, targets, steps=7) - coarser).abs().max() > 1e-5

    assert [module.training for module in model.modules()] == modes
    assert all(parameter.grad is None for parameter in model.parameters())
    with pytest.raises(ConfigError, match="at least one step"):
        integrated_gradients(model, images, targets, steps=0)
    with pytest.raises(ConfigError, match="B targets"):
        input_gradients(model, images, targets[:2])


def test_smoothgrad_averages_gradients_at_seeded_noisy_copies() -> None:
    from captum.attr import NoiseTunnel, Saliency

    model = attribution_net().eval()
    images = torch.rand(3, 2, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 2, 1])
    smooth = smoothgrad(
        model, images, targets, samples=6, sigma=0.2, generator=torch.Generator().manual_seed(5)
    )
    again = smoothgrad(
        model, images, targets, samples=6, sigma=0.2, generator=torch.Generator().manual_seed(5), max_batch=4
    )
    other = smoothgrad(
        model, images, targets, samples=6, sigma=0.2, generator=torch.Generator().manual_seed(6)
    )
    assert smooth.shape == images.shape and torch.allclose(smooth, again, atol=1e-12)
    assert (smooth - other).abs().max() > 1e-4
    # The definition written out: the same draws, σ relative to each image's value range.
    noise = torch.randn((6, *images.shape), generator=torch.Generator().manual_seed(5)).double()
    spread = (images.flatten(1).amax(1) - images.flatten(1).amin(1)).view(1, -1, 1, 1, 1)
    noisy = images[None] + 0.2 * spread * noise
    expected = torch.stack([input_gradients(model, copy_, targets) for copy_ in noisy]).mean(dim=0)
    assert (smooth - expected).abs().max() <= 1e-10
    assert (smooth - input_gradients(model, images, targets)).abs().max() > 1e-4
    # Captum's noise tunnel draws its own noise, so only its form is comparable.
    tunnel = NoiseTunnel(Saliency(model)).attribute(
        images.clone(), nt_type="smoothgrad", nt_samples=6, stdevs=0.2, target=targets, abs=False
    )
    assert tunnel.shape == smooth.shape
    # A linear model has one gradient everywhere: SmoothGrad is exactly the input gradient.
    linear = nn.Sequential(nn.Flatten(), nn.Linear(2 * 9 * 8, 3)).double()
    assert torch.allclose(
        smoothgrad(linear, images, targets, samples=4), input_gradients(linear, images, targets), atol=1e-12
    )
    with pytest.raises(ConfigError, match="at least one sample"):
        smoothgrad(model, images, targets, samples=0)
