"""The dashboard's small pure pieces: list links, the heat table's colours, the form's typing."""

from __future__ import annotations

from starlette.datastructures import FormData

from api.dashboard.job_form import field_of_message, submission_fields, typed_values
from api.dashboard.model_report import heat_cell, relative_luminance
from api.dashboard.paging import list_links


def test_list_links_keep_the_filters_and_know_the_first_and_last_page() -> None:
    first = list_links("/dashboard/jobs", {"state": "failed"}, cursor=None, next_cursor="abc")
    assert first.first is None and first.next == "/dashboard/jobs?state=failed&cursor=abc"
    last = list_links("/dashboard/jobs", {"state": "failed"}, cursor="abc", next_cursor=None)
    assert last.first == "/dashboard/jobs?state=failed" and last.next is None


def contrast(foreground: str, background: str) -> float:
    def luminance(colour: str) -> float:
        return relative_luminance([int(colour[i : i + 2], 16) for i in (1, 3, 5)])

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_shade_of_the_heat_table_keeps_its_number_readable() -> None:
    for step in range(101):
        cell = heat_cell(step, step / 100)
        assert contrast(cell.text, cell.background) >= 4.5, (step, cell)
    assert heat_cell(0, 0.0).background != heat_cell(9, 1.0).background


def test_form_values_are_typed_as_the_api_reads_them_and_bad_numbers_pass_through() -> None:
    fields = submission_fields()
    form = FormData(
        [("epochs", "3"), ("lr", "0.01"), ("image_size", ""), ("batch_size", "x"), ("model", "resnet18")]
    )
    values, entered = typed_values(fields, form)
    assert values == {"epochs": 3, "lr": 0.01, "image_size": None, "batch_size": "x", "model": "resnet18"}
    assert entered["batch_size"] == "x"


def test_a_library_message_is_placed_at_the_first_field_it_names() -> None:
    fields = submission_fields()
    assert field_of_message(fields, "epochs must be a whole number in [1, 1000], got 0") == "epochs"
    assert (
        field_of_message(fields, "prototype_mask 'decoy' needs a built-in decoy dataset") == "prototype_mask"
    )
    assert field_of_message(fields, "something else entirely") is None
