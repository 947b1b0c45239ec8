"""``gatehouse scanner …`` end to end, in-process."""
from __future__ import annotations

import json

from gatehouse.cli import main
from tests.scanners.test_camera import write_video


def test_listen_prints_the_scans_of_a_video_file_as_json(tmp_path, capsys):
    path = tmp_path / "gate.avi"
    write_video(path, [(None, "", 3), ("TK-2026-000007", "code128", 10), (None, "", 3)])
    assert main(["scanner", "listen", "--backend", "camera", "--device", str(path), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    scans = [line for line in lines if "payload" in line]
    assert [(s["payload"], s["symbology"]) for s in scans] == [("TK-2026-000007", "code128")]


def test_listen_with_bad_settings_exits_with_a_message(capsys):
    assert main(["scanner", "listen", "--backend", "serial"]) == 2
    assert "scanner.port" in capsys.readouterr().err


def test_corpus_writes_images_and_expected_texts(tmp_path):
    assert main(["scanner", "corpus", "--out", str(tmp_path), "--count", "3", "--negatives", "1"]) == 0
    expected = json.loads((tmp_path / "expected.json").read_text())
    assert len(expected) == 4 and len(list(tmp_path.glob("*.png"))) == 4
    assert sum(v["expected"] is None for v in expected.values()) == 1
