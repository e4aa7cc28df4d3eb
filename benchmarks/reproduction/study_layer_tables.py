"""The study's tables for the earlier CAM layer with per-image loss CAMs (``study_layer``).

Two families of tests, each Holm-corrected on its own: on the test split, the per-image
``features.2`` row against the reference (CAM layer ``features``) and against the ablation's
``features.2`` row whose CAMs mixed the batch; on the validation split, the λ the option chooses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from reproduction.cells import Cell
from reproduction.selection import choose
from reproduction.study import BATCHCAM
from reproduction.study_layer import EARLIER_LAYER, PER_IMAGE_LAYER, per_image_layer_cell
from reproduction.study_tables import (
    Row,
    accuracy,
    by_seed,
    follows_decoy,
    main_table,
    paired_tests_table,
    tests_table,
)

PER_IMAGE = f"CAM layer {EARLIER_LAYER}, BatchNorm statistics constant (per-image CAMs)"
MIXED = f"CAM layer {EARLIER_LAYER}, CAMs mixing the batch (the ablation's row)"
SELECTION_SEED = 0  # the study's selection seed


def layer_markdown(l1_lambda: float, rows: Sequence[Row]) -> str:
    """Test rows (reference, mixed, per-image at ``l1_lambda`` and at the validation's choice where
    it differs and has run), their tests, and the option's λ on the validation split."""
    reference = BATCHCAM.cell(l1_lambda, 0)
    mixed = replace(reference, target_layer=EARLIER_LAYER)
    entries: list[tuple[str, str, str, Cell]] = [
        ("Batch-CAM L1, CAM layer features (reference)", "paper", f"{l1_lambda:g}", reference),
        (MIXED, "paper", f"{l1_lambda:g}", mixed),
    ]
    chosen = chosen_lambda(rows)
    for lam in dict.fromkeys([l1_lambda, *([chosen] if chosen is not None else [])]):
        cell = per_image_layer_cell(lam, 0)
        if lam == l1_lambda or by_seed(rows, cell):
            entries.append((f"{PER_IMAGE}, λ {lam:g}", "paper", f"{lam:g}", cell))
    per_image = [(name, cell) for name, _, _, cell in entries[2:]]
    # Decoy-masked prototypes at both layers, each against the same layer with class-mean prototypes.
    masked = [
        (
            f"{PER_IMAGE}, decoy-masked prototypes",
            replace(per_image[0][1], prototype_mask="decoy"),
            per_image[0][1],
        ),
        (
            "Batch-CAM L1, CAM layer features, decoy-masked prototypes",
            replace(reference, prototype_mask="decoy"),
            reference,
        ),
    ]
    entries += [(name, "paper", f"{l1_lambda:g}", cell) for name, cell, _ in masked]
    tests = [
        f"*{title}, against the reference (Holm over the rows):*\n\n"
        + tests_table([(MIXED, mixed), *per_image], reference, rows, value)
        + f"\n\n*{title}, per-image against mixing CAMs at {EARLIER_LAYER} (Holm over the rows):*\n\n"
        + tests_table(per_image, mixed, rows, value)
        + f"\n\n*{title}, decoy-masked against class-mean prototypes, same layer (Holm over the rows):*\n\n"
        + paired_tests_table(masked, rows, value)
        for title, value in (("test accuracy", accuracy), ("follows the decoy", follows_decoy))
    ]
    return "\n\n".join([main_table(entries, rows), *tests, selection_markdown(rows, l1_lambda)])


def selection_markdown(rows: Sequence[Row], l1_lambda: float) -> str:
    """Validation accuracy per λ with the option (seed 0), beside Batch-CAM L1 at layer features."""
    lines = [
        "Validation split (seed 0, as the study's selection):",
        "",
        "| setting | λ tried: validation accuracy (%) | best λ |",
        "|---|---|---|",
    ]
    for name, cell_of in (
        (
            "Batch-CAM L1, CAM layer features",
            lambda lam: BATCHCAM.cell(lam, 0, evaluation_split="validation"),
        ),
        (PER_IMAGE, lambda lam: per_image_layer_cell(lam, 0, evaluation_split="validation")),
    ):
        values = _validation_accuracy(rows, cell_of)
        tried = ", ".join(f"{lam:g}: {100 * acc:.2f}" for lam, acc in values.items()) or "not run yet"
        best = (
            f"{max(values, key=lambda lam: values[lam]):g}" if len(values) == len(BATCHCAM.lambdas) else "—"
        )
        lines.append(f"| {name} | {tried} | {best} |")
    chosen = chosen_lambda(rows)
    if chosen is not None and chosen != l1_lambda:
        lines += [
            "",
            f"The option's validation choice (λ {chosen:g}) differs from the test rows' λ {l1_lambda:g}.",
        ]
    return "\n".join(lines)


def chosen_lambda(rows: Sequence[Row]) -> float | None:
    """The option's λ as the study chooses every method's (``reproduction.selection.choose``); None
    until all of its λ have run on a validation seed."""
    try:
        return choose(rows, methods=(PER_IMAGE_LAYER,))[PER_IMAGE_LAYER.name].lam
    except LookupError:
        return None


def _validation_accuracy(rows: Sequence[Row], cell_of: Callable[[float], Cell]) -> dict[float, float]:
    """λ → seed 0's validation accuracy, for the λ that ran."""
    found = {}
    for lam in BATCHCAM.lambdas:
        values = by_seed(rows, cell_of(lam))
        if SELECTION_SEED in values:
            found[lam] = values[SELECTION_SEED]
    return found
