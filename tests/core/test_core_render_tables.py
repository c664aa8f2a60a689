"""Tables on a narrow terminal wrap between words: a word or a date is never split while there
is room to keep it whole, and a word longer than any column folds instead of being cut."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from klingbridge.render import add_row, table

ACCOUNT_ROW = (
    "kling",
    "Simulated video pack",
    "decreasing_total",
    "1000.0 kling_unit",
    "1000.0",
    "online",
    "2027-12-01",
)


def rendered(width: int, *rows: tuple[str, ...], headers: tuple[str, ...]) -> list[str]:
    shown = table(*headers)
    for row in rows:
        add_row(shown, *row)
    out = io.StringIO()
    Console(file=out, width=width, highlight=False, color_system=None).print(shown)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= width for line in lines), lines
    return lines


@pytest.mark.parametrize("width", [80, 88, 95, 120])
def test_the_account_table_keeps_its_words_and_dates_whole(width: int) -> None:
    headers = ("provider", "pack", "kind", "remaining", "total", "status", "expires")
    lines = rendered(width, ACCOUNT_ROW, headers=headers)
    text = "\n".join(lines)
    for word in ("decreasing_total", "2027-12-01", "kling_unit", "Simulated", "remaining"):
        assert word in text, text
    assert sum("decreasing_total" in line for line in lines) == 1


def test_with_room_for_the_words_the_borders_stay() -> None:
    headers = ("provider", "pack", "kind", "remaining", "total", "status", "expires")
    lines = rendered(88, ACCOUNT_ROW, headers=headers)
    assert lines[0].startswith("┏") and "Simulated" in lines[3] and "video pack" in lines[4]


def test_the_same_table_rendered_wide_again_gets_its_borders_back() -> None:
    shown = table("provider", "pack", "kind", "remaining", "total", "status", "expires")
    add_row(shown, *ACCOUNT_ROW)
    for width, bordered in ((80, False), (120, True)):
        out = io.StringIO()
        Console(file=out, width=width, color_system=None).print(shown)
        assert out.getvalue().startswith("┏") is bordered


def test_a_word_longer_than_any_layout_allows_still_folds_whole() -> None:
    task_id = "x" * 70
    lines = rendered(50, ("k1", "kling", task_id), headers=("key", "provider", "task id"))
    text = "\n".join(lines)
    assert "…" not in text and text.count("x") == len(task_id)  # folded, every character kept
    assert lines[0].startswith("┏")  # no layout keeps it whole: the borders stay, as before


TASKS_HEADERS = ("key", "provider", "task id", "kind", "status", "quoted", "charged", "files")
TASKS_ROWS = (
    ("kb-bb07e1ea8cb14a01", "piapi", "80096c16-be11-4361-919d-56c2c79bf989", "sound",
     "succeeded", "$0.0700", "$0.0700", "0"),
    ("kb-9d042c40248f7d2b", "kling", "fZ14rZ-9b8lSUO_1fTNNgg", "sound", "succeeded", "$0.0350",
     "$0.0350", "0"),
)  # fmt: skip


@pytest.mark.parametrize("width", [80, 90, 100])
def test_when_an_id_must_fold_the_short_words_stay_whole(width: int) -> None:
    """`tasks` at 80 columns: no layout keeps the task id whole, and yet `provider` and
    `succeeded` were folded (`provide` / `r`, `succeed` / `ed`) with it."""
    lines = rendered(width, *TASKS_ROWS, headers=TASKS_HEADERS)
    text = "\n".join(lines)
    for word in ("provider", "succeeded", "$0.0700", "charged", "files", "sound", "kling"):
        assert word in text, text
    assert sum("succeeded" in line for line in lines) == 2, text
