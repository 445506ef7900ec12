"""Table output shows values as they are: a check's '[integrity]' is data, not rich markup."""
from __future__ import annotations

import pytest

from harness.commands._output import human_size, table


def test_square_brackets_in_values_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    table("checks [x]", ["check", "actual"], [["TL2 kernel lockdown", "none [integrity] confidentiality"],
                                              ["C1", "[bold]not bold[/bold]"]])
    out = capsys.readouterr().out
    assert "none [integrity] confidentiality" in out
    assert "[bold]not bold[/bold]" in out and "checks [x]" in out


def test_human_size() -> None:
    assert human_size(512) == "512 B" and human_size(1288490189) == "1.2 GiB"
