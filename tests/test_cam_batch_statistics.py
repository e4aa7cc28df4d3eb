"""Per-image loss CAMs at a layer followed by BatchNorm (``cam_batch_statistics="constant"``).

In train mode the BatchNorm after ``features.2`` of ``simple_cnn`` normalises with the batch's
statistics. The reference for "per-image" is the plain hook-based Grad-CAM (tests/cam_reference.py)
of each image alone through a copy of the network frozen at those statistics: eval mode, every
BatchNorm's running averages replaced by the mean and biased variance it saw in the batch's
train-mode pass. That network computes exactly the batch's activations for every image, and nothing
in it depends on another image.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from cam_reference import reference_cam
from test_cam import FunctionalAndSharedBatchNorm
from torch import nn

from batchcam.cam import CamExtractor
from batchcam.cam.split import TracedSplit
from batchcam.data import DatasetSplits, load_shapes
from batchcam.device import select_execution
from batchcam.errors import ConfigError, LayerError
from batchcam.losses import LossTerms
from batchcam.models import build
from batchcam.pipeline import prototypes_for
from batchcam.training import TrainConfig, Trainer

CPU = select_execution("cpu")
# Inner layers followed by BatchNorm: simple_cnn's 14×14 block and a ResNet stage (residual paths).
MIXING_LAYERS = [("simple_cnn", "features.2"), ("resnet18", "layer3")]


def train_mode_model(name: str) -> nn.Module:
    """float64: the reference runs one image at a time, where float32 CPU kernels chosen per batch
    size differ by ~1e-3 after the CAM's normalisation (see test_cam)."""
    torch.manual_seed(0)
    model = build(name, num_classes=4).double()
    with torch.no_grad():  # BatchNorm affine parameters other than the identity they start as
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.train()


def batch_statistics(model: nn.Module, images: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each BatchNorm's input mean and biased variance in one train-mode pass of ``images``."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):

            def keep(_module: nn.Module, inputs: tuple[torch.Tensor, ...], name: str = name) -> None:
                x = inputs[0].detach()
                seen[name] = (x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False))

            handles.append(module.register_forward_pre_hook(keep))
    try:
        with torch.no_grad():
            copy.deepcopy(model).train()(images)  # a copy: the model's own running averages stay
    finally:
        for handle in handles:
            handle.remove()
    return seen


def frozen_at_batch_statistics(model: nn.Module, images: torch.Tensor) -> nn.Module:
    frozen = copy.deepcopy(model).eval()
    statistics = batch_statistics(model, images)
    for name, module in frozen.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            mean, var = statistics[name]
            module.running_mean.copy_(mean)
            module.running_var.copy_(var)
    return frozen


def per_image_reference(
    model: nn.Module, layer: str, images: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    frozen = frozen_at_batch_statistics(model, images)
    return torch.stack(
        [reference_cam(frozen, layer, "gradcam", images[i], int(targets[i])) for i in range(len(images))]
    )


def batch_and_targets(batch: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(batch, 1, 28, 28, generator=generator, dtype=torch.float64)
    return images, torch.randint(0, 4, (batch,), generator=generator)


@pytest.mark.parametrize(("name", "layer"), MIXING_LAYERS)
def test_constant_statistics_cams_are_the_per_image_cams_of_the_frozen_network(name: str, layer: str) -> None:
    model = train_mode_model(name)
    images, targets = batch_and_targets()
    extractor = CamExtractor(model, layer).with_constant_statistics()

    result = extractor(images, targets, create_graph=True)

    reference = per_image_reference(model, layer, images, targets)
    assert (result.maps - reference).abs().max() <= 1e-5
    # The same forward values as train mode: the cross-entropy and the CAMs see one network.
    with torch.no_grad():
        train_logits = copy.deepcopy(model)(images)
    assert torch.allclose(result.logits, train_logits, atol=1e-10)


@pytest.mark.parametrize(("name", "layer"), MIXING_LAYERS)
def test_with_differentiable_statistics_the_cams_mix_the_batch(name: str, layer: str) -> None:
    """The default: the same reference fails, by far more than the tolerance above."""
    model = train_mode_model(name)
    images, targets = batch_and_targets()

    mixed = CamExtractor(model, layer)(images, targets, create_graph=True).maps

    assert (mixed - per_image_reference(model, layer, images, targets)).abs().max() > 1e-2


@pytest.mark.parametrize("statistics", ["constant", "differentiable"])
def test_an_images_cam_moves_with_another_images_activations_only_through_differentiable_statistics(
    statistics: str,
) -> None:
    """d CAM_0 / d A_j for j ≠ 0 (the loss trains through it): zero exactly when the statistics are
    held constant; image 0's own activations move its CAM either way."""
    model = train_mode_model("simple_cnn")
    images, targets = batch_and_targets()
    extractor = CamExtractor(model, "features.2")
    if statistics == "constant":
        extractor = extractor.with_constant_statistics()
    activations, logits = extractor.forward(images, differentiable=True)
    cams = extractor.maps(activations, logits, targets, (28, 28), create_graph=True)

    (gradient,) = torch.autograd.grad(cams[0].sum(), activations)

    assert gradient[0].abs().max() > 1e-6
    assert bool(gradient[1:].abs().max() > 1e-6) == (statistics == "differentiable")


def test_the_constant_statistics_pass_updates_no_running_average() -> None:
    model = train_mode_model("resnet18")
    images, _ = batch_and_targets()
    before = copy.deepcopy(model.state_dict())

    CamExtractor(model, "layer3").with_constant_statistics().forward(images, differentiable=True)

    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_what_cannot_be_held_constant_is_refused_by_name() -> None:
    with pytest.raises(LayerError, match="functional batch_norm call 'batch_norm'"):
        TracedSplit(FunctionalAndSharedBatchNorm().train(), "conv").with_constant_statistics()
    with pytest.raises(LayerError, match="no BatchNorm follows layer 'features'"):
        CamExtractor(build("simple_cnn", num_classes=4), "features").with_constant_statistics()


# -- the trainer ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes() -> DatasetSplits:
    return load_shapes(seed=0, n_train=128, n_test=32)


def make_trainer(splits: DatasetSplits, statistics: str, target_layer: str | None = "features.2") -> Trainer:
    config = TrainConfig(
        mode="batchcam",
        lambda_batchcam=10.0,
        target_layer=target_layer,
        cam_batch_statistics=statistics,  # type: ignore[arg-type]
        batch_size=32,
    )
    torch.manual_seed(0)
    model = build("simple_cnn", splits.train.num_classes)
    return Trainer(model, splits.train, splits.test, prototypes_for(splits.train), config, CPU)


class RecordObjective:
    """The trainer's objective, keeping its CAMs and the gradient of its cross-entropy term alone."""

    def __init__(self, trainer: Trainer) -> None:
        self.objective = trainer.objective
        self.parameters = list(trainer.model.parameters())
        self.cams: list[torch.Tensor] = []
        self.cross_entropy_gradients: list[torch.Tensor] = []

    def __getattr__(self, name: str):  # needs_cams, needs_masks, …: the real objective's answers
        return getattr(self.objective, name)

    def __call__(self, logits, cams, labels, masks=None, inputs=None) -> LossTerms:
        terms = self.objective(logits, cams, labels, masks, inputs)
        self.cams.append(cams.detach())
        self.cross_entropy_gradients = list(
            torch.autograd.grad(terms.cross_entropy, self.parameters, retain_graph=True)
        )
        return terms


def recorded_step(trainer: Trainer, images: torch.Tensor, labels: torch.Tensor) -> RecordObjective:
    recorder = RecordObjective(trainer)
    trainer.objective = recorder  # type: ignore[assignment]
    trainer.train_step(images, labels)
    return recorder


def test_the_trainers_loss_cams_are_the_constant_statistics_cams(shapes: DatasetSplits) -> None:
    trainer = make_trainer(shapes, "constant")
    images, labels = shapes.train[torch.arange(32)]
    before = copy.deepcopy(trainer.model)  # the weights and statistics the step's CAMs are made with
    expected = CamExtractor(before, "features.2").with_constant_statistics()(
        CPU.model_input(images), labels, create_graph=True
    )

    recorder = recorded_step(trainer, images, labels)

    assert (recorder.cams[0] - expected.maps.detach()).abs().max() <= 1e-5


def test_the_option_leaves_the_cross_entropy_gradient_and_the_running_averages_alone(
    shapes: DatasetSplits,
) -> None:
    """Both are those of one ordinary train-mode pass: the running averages are updated once a step."""
    images, labels = shapes.train[torch.arange(32)]
    ordinary = make_trainer(shapes, "constant").model  # the initial weights both trainers start from
    steps = {}
    for statistics in ("differentiable", "constant"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the default's mixing warning is another test's
            trainer = make_trainer(shapes, statistics)
            steps[statistics] = (recorded_step(trainer, images, labels), trainer.model)
    logits = ordinary(CPU.model_input(images))
    expected = torch.autograd.grad(nn.functional.cross_entropy(logits, labels), list(ordinary.parameters()))
    buffers = dict(ordinary.named_buffers())

    for recorder, model in steps.values():
        for got, want in zip(recorder.cross_entropy_gradients, expected, strict=True):
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-7)
        for name, value in model.named_buffers():
            assert torch.allclose(value, buffers[name], rtol=1e-5, atol=1e-7), name
    differentiable, constant = (recorder.cams[0] for recorder, _ in steps.values())
    assert (differentiable - constant).abs().max() > 1e-3  # and the option does change the loss's CAMs


def test_the_mixing_warning_names_the_option_and_the_option_silences_it(shapes: DatasetSplits) -> None:
    with pytest.warns(UserWarning, match="cam_batch_statistics to 'constant'"):
        make_trainer(shapes, "differentiable")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_trainer(shapes, "constant")
        make_trainer(shapes, "constant", target_layer=None)  # nothing to hold constant: nothing happens


def test_the_option_is_validated() -> None:
    with pytest.raises(
        ConfigError, match="unknown cam_batch_statistics 'frozen'; accepted: differentiable, constant"
    ):
        TrainConfig(cam_batch_statistics="frozen")  # type: ignore[arg-type]
    assert TrainConfig().cam_batch_statistics == "differentiable"
