"""The batched CAM against a per-image hook reference, pytorch-grad-cam, and its own contract."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cam_reference import activations_and_gradients, reference_cam
from torch import nn

import batchcam
from batchcam.cam import CAM_METHODS, CamExtractor, CamPostprocess, grad_cam
from batchcam.cam.split import NativeSplit, TracedSplit
from batchcam.errors import ConfigError, LayerError
from batchcam.models import build

METHODS = list(CAM_METHODS)
# Default layer (native split) and one inner layer (torch.fx split), where gradients vary spatially.
# Not ConvNeXt's "stages.2": the channel LayerNorm that follows it makes Σ_k G_k·A_k vanish
# identically (LayerNorm gradients are orthogonal to the centred input), so HiResCAM there is
# float noise; a block inside the stage is followed by a residual and has a real map.
LAYERS = {
    "simple_cnn": ["features", "features.2"],
    "resnet18": ["layer4", "layer3"],
    "convnextv2_tiny": ["stages.3", "stages.2.blocks.7"],
}


@pytest.fixture(scope="module")
def trained_like_models() -> dict[str, nn.Module]:
    """Models in eval mode with non-trivial BatchNorm statistics (fresh BN stats are the identity)."""
    torch.manual_seed(0)
    models = {}
    for name in LAYERS:
        model = build(name, num_classes=4)
        with torch.no_grad():
            model.train()
            model(torch.rand(8, 1, 28, 28))
        models[name] = model.eval()
    return models


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "name", ["simple_cnn", "resnet18", pytest.param("convnextv2_tiny", marks=pytest.mark.slow)]
)
def test_batched_cam_equals_per_image_hook_reference(trained_like_models, name: str, method: str) -> None:
    # float64: in float32, CPU convolution kernels chosen per batch size (oneDNN on some AMD CPUs) differ
    # by ~1e-3 after the CAM's normalisation, which would hide a real difference of that size.
    model = copy.deepcopy(trained_like_models[name]).double()
    torch.manual_seed(1)
    images = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    targets = torch.tensor([0, 3, 1])
    for layer in LAYERS[name]:
        batched = grad_cam(model, images, targets, layer=layer, method=method)
        reference = torch.stack(
            [reference_cam(model, layer, method, images[i], int(targets[i])) for i in range(len(images))]
        )
        assert batched.shape == (3, 28, 28)
        assert (batched - reference).abs().max() <= 1e-5, f"{name} {layer} {method}"


@pytest.mark.parametrize(
    ("name", "layer", "mixes"),
    [
        ("resnet18", "layer4", False),
        ("resnet18", "layer4.1.bn2", False),  # a CAM at a BatchNorm's own output: still per-image
        ("resnet18", "layer3", True),
        ("simple_cnn", "features.2", True),
    ],
)
def test_batchnorm_after_the_layer_is_named_exactly_when_images_mix_in_train_mode(
    name: str, layer: str, mixes: bool
) -> None:
    """In train mode, image 0's logit depends on image 1's activations only through BatchNorm."""
    torch.manual_seed(0)
    split = TracedSplit(build(name, num_classes=4).train(), layer)
    activations, logits = split(torch.rand(3, 1, 28, 28), differentiable=True)
    (gradient,) = torch.autograd.grad(logits[0, 1], activations)
    assert bool(gradient[1:].abs().max() > 1e-6) == mixes
    assert bool(split.batchnorm_after_layer) == mixes
    if name == "resnet18" and mixes:
        assert split.batchnorm_after_layer[0] == "layer4.0.bn1"


class FunctionalAndSharedBatchNorm(nn.Module):
    """A functional batch_norm call and one BatchNorm module applied twice after ``conv``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.register_buffer("mean", torch.zeros(4))
        self.register_buffer("var", torch.ones(4))
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x)
        normalised = F.batch_norm(features, self.mean, self.var, training=self.training)
        return self.fc(self.bn(self.bn(normalised).relu()).mean((2, 3)))


def test_functional_and_repeated_batchnorm_are_found_once() -> None:
    split = TracedSplit(FunctionalAndSharedBatchNorm().train(), "conv")
    assert split.batchnorm_after_layer == ("batch_norm", "bn")


def test_inner_layer_methods_really_differ(trained_like_models) -> None:
    """Guards the equivalence test: at an inner layer the five methods must not coincide."""
    images = torch.rand(2, 1, 28, 28)
    maps = [
        grad_cam(trained_like_models["resnet18"], images, torch.tensor([0, 1]), "layer3", m) for m in METHODS
    ]
    for i in range(len(maps)):
        for j in range(i + 1, len(maps)):
            assert (maps[i] - maps[j]).abs().max() > 1e-3, (METHODS[i], METHODS[j])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("name", "layer"), [("simple_cnn", "features"), ("resnet18", "layer4"), ("resnet18", "layer3")]
)
def test_agrees_with_pytorch_grad_cam(trained_like_models, name: str, layer: str, method: str) -> None:
    """pytorch-grad-cam min-max normalises at layer resolution, resizes with OpenCV, and normalises
    again when it aggregates layers; we feed our raw (ReLU-only) maps through that same function,
    twice as it does, and compare. Both sides compute the
    same float32 formulas with different summation orders, so agreement is to float32 rounding
    amplified by the min-max division: 1e-4 absolute on maps in [0, 1]."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    oracle_classes = {
        "gradcam": GradCAM,
        "gradcam++": GradCAMPlusPlus,
        "xgradcam": XGradCAM,
        "layercam": LayerCAM,
        "hirescam": HiResCAM,
    }
    model = trained_like_models[name]
    images = torch.rand(4, 1, 28, 28)
    targets = torch.tensor([0, 1, 2, 3])
    module = dict(model.named_modules())[layer]
    with oracle_classes[method](model=model, target_layers=[module]) as oracle:
        expected = oracle(input_tensor=images, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    raw = CamPostprocess(relu=True, upsample=False, normalize="none")
    ours = grad_cam(model, images, targets, layer, method, postprocess=raw)
    ours_processed = scale_cam_image(scale_cam_image(ours.numpy(), (28, 28)))
    np.testing.assert_allclose(ours_processed, expected, atol=1e-4)
    model.eval()  # pytorch-grad-cam puts the model in eval mode itself; keep the fixture's state


def test_no_parameter_grad_and_modes_left_as_found() -> None:
    model = build("resnet18", 3)
    model.train()
    model.bn1.eval()  # a mixed state must survive too (e.g. frozen BatchNorm)
    modes = {n: m.training for n, m in model.named_modules()}
    for layer in ("layer4", "layer3"):
        grad_cam(model, torch.rand(2, 1, 28, 28), torch.tensor([0, 2]), layer=layer, create_graph=True)
    assert all(p.grad is None for p in model.parameters())
    assert {n: m.training for n, m in model.named_modules()} == modes


def test_inference_result_is_detached_and_works_under_no_grad() -> None:
    model = build("simple_cnn", 3).eval()
    with torch.no_grad():
        maps = grad_cam(model, torch.rand(2, 1, 28, 28), torch.tensor([0, 1]))
    assert not maps.requires_grad
    assert maps.min() >= 0 and maps.max() <= 1


@pytest.mark.parametrize("layer", ["layer4", "layer3"])
def test_frozen_model_explains_exactly_as_unfrozen(layer: str) -> None:
    torch.manual_seed(0)
    model = build("resnet18", 3).eval()
    images, targets = torch.rand(2, 1, 28, 28), torch.tensor([0, 1])
    unfrozen = grad_cam(model, images, targets, layer=layer)
    frozen = grad_cam(model.requires_grad_(False), images, targets, layer=layer)
    assert frozen.shape == (2, 28, 28) and frozen.max() > 0
    assert torch.allclose(frozen, unfrozen, atol=1e-6)


def test_exact_gradients_reach_the_head_and_constant_weights_do_not() -> None:
    """With exact (second-order) CAM gradients the classifier weights influence the CAM through the
    channel weights; with constant weights they cannot (the activations do not depend on them)."""
    torch.manual_seed(0)
    model = build("simple_cnn", 3).eval()
    images, targets = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 0])
    head = model.head[-1].weight

    exact = grad_cam(model, images, targets, create_graph=True)
    (exact_grad,) = torch.autograd.grad(exact.sum(), head)
    assert exact_grad.abs().sum() > 0

    constant = grad_cam(model, images, targets, create_graph=True, constant_weights=True)
    (constant_grad,) = torch.autograd.grad(constant.sum(), head, allow_unused=True)
    assert constant_grad is None or constant_grad.abs().sum() == 0
    (features_grad,) = torch.autograd.grad(constant.sum(), model.features[0][0].weight)
    assert features_grad.abs().sum() > 0


def test_predicted_class_is_the_default_target() -> None:
    model = build("simple_cnn", 3).eval()
    images = torch.rand(3, 1, 28, 28)
    result = CamExtractor(model)(images)
    assert torch.equal(result.targets, model(images).argmax(dim=1))
    assert torch.allclose(result.maps, grad_cam(model, images, result.targets))


def test_all_zero_map_stays_zero() -> None:
    post = CamPostprocess()
    out = post(torch.zeros(2, 4, 4), (8, 8))
    assert out.shape == (2, 8, 8) and torch.count_nonzero(out) == 0 and torch.isfinite(out).all()


def test_postprocess_is_recorded() -> None:
    result = CamExtractor(build("simple_cnn", 2).eval())(torch.rand(1, 1, 28, 28))
    assert result.describe() == {
        "layer": "features",
        "method": "gradcam",
        "postprocess": {
            "relu": True,
            "upsample": True,
            "normalize": "minmax",
            "eps": 1e-7,
            "interpolation": "bilinear, align_corners=False",
        },
    }


def test_any_torchvision_classifier_with_a_layer_name() -> None:
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(0)
    model = mobilenet_v3_small(num_classes=5).eval()
    images, targets = torch.rand(2, 3, 64, 64), [1, 4]
    maps = batchcam.grad_cam(model, images, torch.tensor(targets), layer="features.12")
    reference = torch.stack(
        [reference_cam(model, "features.12", "gradcam", images[i], t) for i, t in enumerate(targets)]
    )
    assert maps.shape == (2, 64, 64)
    assert (maps - reference).abs().max() <= 1e-5


def test_any_timm_classifier_with_a_layer_name_goes_through_fx() -> None:
    """timm models have forward_features/forward_head but no default_target_layer: traced split."""
    import timm

    model = timm.create_model("resnet10t", pretrained=False, num_classes=3).eval()
    assert isinstance(CamExtractor(model, "layer4").split, TracedSplit)
    assert isinstance(CamExtractor(build("simple_cnn", 3)).split, NativeSplit)  # ours: native
    images = torch.rand(2, 3, 64, 64)
    maps = grad_cam(model, images, torch.tensor([0, 2]), layer="layer4")
    expected = torch.stack(
        [reference_cam(model, "layer4", "gradcam", images[i], t) for i, t in enumerate([0, 2])]
    )
    assert (maps - expected).abs().max() <= 1e-5


def test_unknown_layer_names_close_matches() -> None:
    with pytest.raises(LayerError, match=r"'layer5' does not exist.*layer4"):
        grad_cam(build("resnet18", 2), torch.rand(1, 1, 28, 28), torch.tensor([0]), layer="layer5")


@pytest.mark.parametrize("layer", ["head.1", "head.2", "head"])
def test_layer_without_spatial_map_is_refused(layer: str) -> None:
    with pytest.raises(LayerError, match=r"B×K×h×w|classifier output"):
        grad_cam(build("simple_cnn", 2).eval(), torch.rand(1, 1, 28, 28), torch.tensor([0]), layer=layer)


def test_model_without_default_layer_asks_for_one() -> None:
    from torchvision.models import resnet18

    with pytest.raises(LayerError, match="pass layer="):
        grad_cam(resnet18(num_classes=2), torch.rand(1, 3, 32, 32), torch.tensor([0]))


def test_bad_method_and_targets() -> None:
    model = build("simple_cnn", 3).eval()
    images = torch.rand(2, 1, 28, 28)
    with pytest.raises(ConfigError, match="accepted: gradcam"):
        grad_cam(model, images, torch.tensor([0, 1]), method="scorecam")
    with pytest.raises(ConfigError, match="LongTensor"):
        grad_cam(model, images, torch.tensor([0.0, 1.0]))
    with pytest.raises(ConfigError, match=r"\[0, 3\)"):
        grad_cam(model, images, torch.tensor([0, 3]))
    with pytest.raises(ConfigError, match="needs create_graph"):
        grad_cam(model, images, torch.tensor([0, 1]), constant_weights=True)


def test_reference_helper_sees_spatially_varying_gradients(trained_like_models) -> None:
    """Sanity of the oracle itself: at an inner layer the gradient is not constant over space."""
    _, g = activations_and_gradients(trained_like_models["resnet18"], "layer3", torch.rand(1, 28, 28), 1)
    assert g.flatten(1).std(dim=1).max() > 0


def test_inference_mode_is_refused_with_what_to_use_instead() -> None:
    model = build("simple_cnn", 3).eval()
    with torch.inference_mode(), pytest.raises(ConfigError, match=r"inference_mode\(\).*no_grad"):
        grad_cam(model, torch.rand(2, 1, 28, 28), torch.tensor([0, 1]))
    extractor = CamExtractor(model)
    activations, logits = extractor.forward(torch.rand(1, 1, 28, 28), differentiable=False)
    with torch.inference_mode(), pytest.raises(ConfigError, match="need autograd"):
        extractor.maps(activations, logits, torch.tensor([0]), (28, 28))


class IgnoresItsFeatures(nn.Module):
    """A classifier whose logits do not depend on its CAM layer."""

    default_target_layer = "features"

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 2, 3)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def test_logits_that_ignore_the_layer_are_a_layer_error() -> None:
    with pytest.raises(LayerError, match="do not depend on layer 'features'"):
        grad_cam(IgnoresItsFeatures(), torch.rand(2, 1, 8, 8), torch.tensor([0, 2]))


def test_other_autograd_failures_are_not_blamed_on_the_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    model = build("simple_cnn", 3).eval()
    monkeypatch.setattr(torch.autograd, "grad", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError, match="out of memory"):
        grad_cam(model, torch.rand(2, 1, 28, 28), torch.tensor([0, 1]))
