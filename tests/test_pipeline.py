"""A whole run on disk: artifacts, reloading, explaining, prototypes, initial weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from batchcam import pipeline
from batchcam.artifacts import RunFiles
from batchcam.cam import grad_cam
from batchcam.data import DatasetSplits, load_shapes
from batchcam.data.decoy import corner_masks
from batchcam.data.registry import load_dataset
from batchcam.errors import ConfigError, DataValidationError
from batchcam.explain import Explainer
from batchcam.metrics import distance
from batchcam.models import build
from batchcam.models.initial_weights import load_initial_weights
from batchcam.pipeline import RunOutput, prototypes_for, train_and_report
from batchcam.prototypes import PrototypeCache, class_prototypes
from batchcam.spec.names import METRICS
from batchcam.training import TrainConfig
from batchcam.weights import FORMAT, load_model, read_spec


@pytest.fixture(scope="module")
def splits() -> DatasetSplits:
    return load_shapes(seed=1, n_train=1200, n_test=300)


@pytest.fixture(scope="module")
def run(splits: DatasetSplits, tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    out = tmp_path_factory.mktemp("run")
    return train_and_report(TrainConfig(epochs=2, batch_size=16, mode="both"), out, splits=splits)


def test_run_directory_holds_every_artifact(run: RunOutput) -> None:
    report = run.report
    assert report is not None and run.outcome == "completed"
    for name, relative in report["artifacts"].items():
        assert (run.files.root / relative).exists(), name
    for png in (
        "prototypes.png",
        "cam_prototypes.png",
        "misclassified.png",
        "training_curves.png",
        "cam_examples.png",
        "faithfulness.png",
    ):
        with Image.open(run.files.root / png) as image:
            assert image.format == "PNG" and image.width > 100
    assert sorted(p.name for p in (run.files.root / "prototypes").iterdir()) == [f"{i}.png" for i in range(5)]
    on_disk = json.loads(run.files.report.read_text())
    assert on_disk == report


def test_report_describes_the_run(run: RunOutput, splits: DatasetSplits) -> None:
    report = run.report
    assert report is not None
    assert report["config"]["mode"] == "both" and report["model"]["architecture"] == "simple_cnn"
    assert report["dataset"]["fingerprint"] == splits.fingerprint
    assert report["cam"]["layer"] == "features" and report["cam"]["postprocess"]["normalize"] == "minmax"
    test = report["test"]
    confusion = torch.tensor(test["confusion_matrix"])
    assert confusion.sum() == len(splits.test)
    assert test["accuracy"] == pytest.approx(float(confusion.diag().sum()) / len(splits.test))
    assert test["misclassified_count"] == len(splits.test) - int(confusion.diag().sum())
    assert len(report["misclassified"]) == min(32, test["misclassified_count"])
    assert 0 < test["object_energy"] <= 1 and test["decoy_energy"] is None
    assert [h["epoch"] for h in report["history"]] == [1, 2]
    assert report["timings"]["cam_ms_per_image"] > 0


def test_report_measures_faithfulness_on_a_recorded_subset(run: RunOutput, splits: DatasetSplits) -> None:
    section = run.report["faithfulness"]  # type: ignore[index]
    indices = section["subset"]["indices"]
    assert section["subset"]["size"] == len(indices) == 64 and indices == sorted(set(indices))
    assert max(indices) < len(splits.test) and section["target"] == "predicted"
    # The trained CAMs beat a random map on the same images (shapes objects are easy evidence).
    assert section["deletion"]["auc"]["map"] < section["deletion"]["auc"]["random"]
    assert section["insertion"]["auc"]["map"] > section["insertion"]["auc"]["random"]
    assert section["road"]["combined"]["map"] > section["road"]["combined"]["random"] + 0.05
    assert section["deletion"]["gain_over_random"] > 0 and section["insertion"]["gain_over_random"] > 0
    objects = section["localisation"]["object"]
    assert objects["energy"]["map"] > objects["energy"]["random"] and objects["pointing"]["map"] > 0.5
    assert set(objects["input_attribution_share"]) == {"input_gradients", "integrated_gradients"}
    assert section["localisation"].keys() == {"object"}  # no decoy in this data
    cascade = section["sanity"]["cascading_randomisation"]
    assert cascade[0]["module"] == "head.2" and cascade[-1]["module"] == "features.0.0"
    assert section["sanity"]["fully_randomised"]["ssim"] < 0.5


def test_a_failed_assessment_is_reported_and_the_trained_model_kept(
    splits: DatasetSplits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*args: object, **kwargs: object) -> None:
        raise ConfigError("images too small to assess")

    monkeypatch.setattr(pipeline, "assess", fails)
    config = TrainConfig(epochs=1, batch_size=64, mode="baseline", faithfulness_images=8)
    output = train_and_report(config, tmp_path / "run", splits=splits)
    assert output.report is not None and "images too small" in output.report["faithfulness"]["error"]
    assert output.files.model.exists() and output.report["test"]["accuracy"] > 0
    assert not (tmp_path / "run" / "faithfulness.png").exists()


def test_faithfulness_images_zero_skips_the_assessment(splits: DatasetSplits, tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=64, mode="baseline", faithfulness_images=0)
    output = train_and_report(config, tmp_path / "run", splits=splits)
    assert output.report is not None and output.report["faithfulness"] is None
    assert not (tmp_path / "run" / "faithfulness.png").exists()


def test_saved_model_reloads_to_the_same_function(run: RunOutput, splits: DatasetSplits) -> None:
    model, spec = load_model(run.files.model)
    assert spec == read_spec(run.files.model)
    assert spec.class_names == splits.class_names and spec.input_size == (28, 28)
    # The report's accuracy must be reproducible from the weights file alone.
    with torch.no_grad():
        logits = model(splits.test.images.float() / 255)
    accuracy = float((logits.argmax(1) == splits.test.labels).float().mean())
    assert accuracy == pytest.approx(run.report["test"]["accuracy"])  # type: ignore[index]


def test_cam_prototypes_file_matches_the_report(run: RunOutput) -> None:
    prototypes, cam_prototypes = run.files.read_prototypes()
    assert prototypes.shape == cam_prototypes.shape == (5, 28, 28)
    reported = run.report["test"]["cam_prototype_distance"]["l1"]["per_class"]  # type: ignore[index]
    recomputed = (cam_prototypes - prototypes).abs().flatten(1).mean(1)
    assert recomputed.tolist() == pytest.approx(reported, abs=1e-6)


def test_explainer_reproduces_the_library_cam(run: RunOutput, splits: DatasetSplits) -> None:
    explainer = Explainer.from_run(run.files.root, torch.device("cpu"))
    images = splits.test.images[:6]
    results = explainer.explain(images, [None, 2, None, 0, None, None])
    model, _ = load_model(run.files.model)
    targets = torch.tensor([r.target for r in results])
    expected = grad_cam(model, images.float() / 255, targets)
    assert torch.allclose(torch.stack([r.cam for r in results]), expected, atol=1e-6)
    assert results[1].target == 2 and results[3].target == 0
    with torch.no_grad():
        predicted = model(images.float() / 255).argmax(1)
    assert [r.predicted for r in results] == predicted.tolist()
    assert all(abs(sum(r.probabilities) - 1) < 1e-5 for r in results)
    probabilities = torch.softmax(model(images.float() / 255), dim=1)
    assert torch.allclose(torch.tensor([r.probabilities for r in results]), probabilities, atol=1e-6)
    cams, predicted_classes = (
        torch.stack([r.cam for r in results]),
        torch.tensor([r.predicted for r in results]),
    )
    for metric in METRICS:  # each image's distances: the CAM against its classes' prototypes, directly
        to_predicted = distance(cams, explainer.prototypes[predicted_classes], metric)
        to_target = distance(cams, explainer.prototypes[targets], metric)
        assert [r.distance_to_predicted[metric] for r in results] == pytest.approx(to_predicted.tolist())
        assert [r.distance_to_target[metric] for r in results] == pytest.approx(to_target.tolist())
    with pytest.raises(ConfigError, match=r"outside \[0, 5\)"):
        explainer.explain(images[:1], [7])


def test_explainer_conforms_colour_and_size(run: RunOutput) -> None:
    explainer = Explainer.from_run(run.files.root, torch.device("cpu"))
    rgb = torch.randint(0, 256, (3, 56, 40), dtype=torch.uint8)
    conformed = explainer.conform(rgb)
    assert conformed.shape == (1, 28, 28) and conformed.dtype == torch.uint8
    gray_from_pillow = Image.fromarray(rgb.permute(1, 2, 0).numpy()).convert("L")
    direct = explainer.conform(torch.from_numpy(__import__("numpy").array(gray_from_pillow))[None])
    assert (conformed.int() - direct.int()).abs().max() <= 1  # same luma weights as Pillow
    assert torch.equal(explainer.conform(conformed), conformed)  # already the model's input: unchanged


def test_explainer_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a finished run"):
        Explainer.from_run(tmp_path)


def test_prototypes_are_normalised_class_means_and_cached(splits: DatasetSplits, tmp_path: Path) -> None:
    train = splits.train
    expected = []
    for c in range(train.num_classes):
        mean = train.images[train.labels == c].double().mean(dim=(0, 1)) / 255
        expected.append((mean - mean.min()) / (mean.max() - mean.min() + 1e-7))
    batches = [(train.images[i : i + 97], train.labels[i : i + 97]) for i in range(0, len(train), 97)]
    streamed = class_prototypes(batches, train.num_classes)
    assert torch.allclose(streamed, torch.stack(expected).float(), atol=1e-6)

    cache = PrototypeCache(tmp_path)
    first = prototypes_for(train, cache)
    assert cache.path_for(train.fingerprint).exists()
    assert torch.equal(cache.load(train.fingerprint), first)  # type: ignore[arg-type]


def test_masked_prototypes_average_each_pixel_over_the_images_that_do_not_mask_it() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 6, 6), dtype=torch.uint8, generator=generator)
    labels = torch.arange(40) % 3
    masked = torch.rand(40, 6, 6, generator=generator) < 0.3
    masked[labels == 2, 0, 0] = True  # a pixel no image of class 2 shows: it stays zero
    reference = []
    for c in range(3):
        pixels = np.ma.masked_array(
            images[labels == c, 0].double().numpy() / 255, masked[labels == c].numpy()
        )
        mean = torch.from_numpy(pixels.mean(axis=0).filled(0.0))
        reference.append((mean - mean.min()) / (mean.max() - mean.min() + 1e-7))
    batches = [(images[i : i + 7], labels[i : i + 7], masked[i : i + 7]) for i in range(0, 40, 7)]
    assert torch.allclose(class_prototypes(batches, 3), torch.stack(reference).float(), atol=1e-6)
    nothing = torch.zeros_like(masked)
    unmasked = [(images[i : i + 7], labels[i : i + 7], nothing[i : i + 7]) for i in range(0, 40, 7)]
    assert torch.equal(class_prototypes(unmasked, 3), class_prototypes([(images, labels)], 3))


def test_decoy_masked_prototypes_lose_the_label_coded_corners(tmp_path: Path) -> None:
    train = load_dataset("decoy-shapes", seed=2).train
    cache = PrototypeCache(tmp_path)
    plain, masked = prototypes_for(train, cache), prototypes_for(train, cache, "decoy")
    corners = corner_masks(*train.image_size).any(dim=0)
    clean = load_dataset("shapes", seed=2).train  # the same images before the patches were painted
    expected = class_prototypes([(clean.images, clean.labels, train.decoy_masks)], clean.num_classes)
    assert torch.equal(masked, expected)
    # The plain means carry the patches' bright gray in every corner; the masked ones do not.
    assert plain[:, corners].mean() > 2 * masked[:, corners].mean()
    assert len(list(tmp_path.iterdir())) == 2  # cached apart: one never answers for the other
    assert torch.equal(prototypes_for(train, cache, "decoy"), masked)


def test_decoy_masked_prototypes_need_a_decoy_dataset(splits: DatasetSplits, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prototype_mask 'decoy' needs a dataset with planted decoy"):
        train_and_report(TrainConfig(epochs=1, prototype_mask="decoy"), tmp_path, splits=splits)
    with pytest.raises(ConfigError, match="unknown prototype_mask 'clean'; accepted: none, decoy"):
        TrainConfig(prototype_mask="clean")  # type: ignore[arg-type]


def test_colour_prototypes_average_the_channels() -> None:
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    images[0, 0] = 255  # red image of class 0
    images[1, :, :2] = 255  # top half white, class 1
    prototypes = class_prototypes([(images, torch.tensor([0, 1]))], 2)
    assert prototypes[0].eq(0).all()  # constant map: normalises to zeros
    assert torch.allclose(prototypes[1, :2], torch.ones(2, 4)) and prototypes[1, 2:].eq(0).all()


def test_initial_weights_load_and_adapt(tmp_path: Path) -> None:
    source = build("resnet18", num_classes=10, in_channels=3)
    path = tmp_path / "init.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    target = build("resnet18", num_classes=5, in_channels=1)
    report = load_initial_weights(target, path)
    assert report.adapted == ["conv1.weight"]
    assert set(report.skipped) == {"fc.weight", "fc.bias"}
    assert torch.equal(target.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    assert torch.allclose(target.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True))

    save_file({"unrelated": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(DataValidationError, match="same architecture"):
        load_initial_weights(target, tmp_path / "other.safetensors")


def test_weights_files_are_checked(tmp_path: Path) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataValidationError, match="not a safetensors file"):
        load_model(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(DataValidationError, match="not a Batch-CAM model"):
        read_spec(tmp_path / "plain.safetensors")
    for damaged in ("{not json", '{"architecture": "simple_cnn"}', "[]"):
        path = tmp_path / "damaged.safetensors"
        save_file({"x": torch.zeros(1)}, str(path), metadata={"format": FORMAT, "spec": damaged})
        with pytest.raises(DataValidationError, match="damaged model description"):
            read_spec(path)


def test_explainer_refuses_a_batch_that_is_not_the_model_input(run: RunOutput) -> None:
    explainer = Explainer.from_run(run.files.root, torch.device("cpu"))
    for wrong in (
        torch.zeros(2, 1, 32, 32, dtype=torch.uint8),  # size: would give CAMs of the wrong feature map
        torch.zeros(2, 3, 28, 28, dtype=torch.uint8),  # channels
        torch.zeros(2, 1, 28, 28),  # float pixels
    ):
        with pytest.raises(ConfigError, match=r"uint8 N×1×28×28 batch .*conform\(\)"):
            explainer.explain(wrong)


def test_stopped_run_writes_no_report(splits: DatasetSplits, tmp_path: Path) -> None:
    from batchcam.training import Callback

    class StopNow(Callback):
        def should_stop(self) -> bool:
            return True

    output = train_and_report(TrainConfig(epochs=1), tmp_path, splits=splits, callbacks=[StopNow()])
    assert output.outcome == "cancelled" and output.report is None
    assert not RunFiles(tmp_path).report.exists()


@pytest.mark.parametrize("damage", [b"", b"garbage, not safetensors", "other tensor"])
def test_damaged_prototype_cache_is_a_miss_and_is_rewritten(
    splits: DatasetSplits, tmp_path: Path, damage: bytes | str
) -> None:
    train = splits.train
    cache = PrototypeCache(tmp_path)
    path = cache.path_for(train.fingerprint)
    if isinstance(damage, bytes):
        path.write_bytes(damage)
    else:
        save_file({"something_else": torch.zeros(2)}, str(path))
    assert cache.load(train.fingerprint) is None
    prototypes = prototypes_for(train, cache)
    assert prototypes.shape == (5, 28, 28)
    assert torch.equal(cache.load(train.fingerprint), prototypes)  # type: ignore[arg-type]


def test_concurrent_prototype_cache_writers_do_not_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second writer that runs to completion while the first is between writing and renaming."""
    import batchcam.prototypes

    cache = PrototypeCache(tmp_path)
    real_save = batchcam.prototypes.save_file
    interleaved: list[bool] = []

    def save_then_let_another_writer_finish(*args: object, **kwargs: object) -> None:
        real_save(*args, **kwargs)
        if not interleaved:
            interleaved.append(True)
            cache.store("f" * 64, torch.ones(2, 4, 4))

    monkeypatch.setattr(batchcam.prototypes, "save_file", save_then_let_another_writer_finish)
    cache.store("f" * 64, torch.zeros(2, 4, 4))
    assert interleaved
    assert torch.equal(cache.load("f" * 64), torch.zeros(2, 4, 4))  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == [cache.path_for("f" * 64).name]


def test_initial_weights_are_recorded_in_the_report(splits: DatasetSplits, tmp_path: Path) -> None:
    source = build("simple_cnn", num_classes=10).state_dict()
    path = tmp_path / "init.safetensors"
    save_file({k: v.contiguous() for k, v in source.items()}, str(path))
    tiny = DatasetSplits("tiny", splits.train.subset(torch.arange(100)), splits.test.subset(torch.arange(40)))
    config = TrainConfig(epochs=1, batch_size=50, mode="baseline", initial_weights=str(path))

    output = train_and_report(config, tmp_path / "run", splits=tiny)

    assert output.report is not None
    assert output.report["initial_weights"] == {
        "loaded": len(source) - 2,
        "adapted": 0,
        "skipped": 2,
        "missing": 2,
        "adapted_names": [],
        "skipped_names": ["head.2.bias", "head.2.weight"],
    }
    assert (
        output.initial_weights is not None
        and output.initial_weights.missing == output.initial_weights.skipped
    )
