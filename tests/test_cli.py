"""The command line."""

from __future__ import annotations

import json

import pytest

from cpdimpact.cli import main
from cpdimpact.records import Records


def test_simulate_writes_tables_that_read_back(tmp_path, capsys):
    assert main(["simulate", "city_partnership", "--out", str(tmp_path), "--scale", "0.1"]) == 0
    records = Records.from_csv(
        pupils=tmp_path / "pupils.csv",
        participation=tmp_path / "participation.csv",
        schools=tmp_path / "schools.csv",
        teachers=tmp_path / "teachers.csv",
    )
    records.validate(teacher_level=True)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["effect_size"] == pytest.approx(truth["att"] / truth["outcome_sd"])
    assert "pupils" in capsys.readouterr().out


def test_demo_writes_report(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--scale", "0.3", "--seed", "3"]) == 0
    assert (tmp_path / "report.html").exists()


def test_unknown_preset_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        main(["simulate", "london_challenge", "--out", str(tmp_path)])
