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


def test_bench_decode_runs_as_a_process_and_prints_one_json_object_with_the_headline_keys():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "gatehouse", "bench", "decode", "--json", "--photos", "5", "--photo-negatives", "2",
         "--count", "3", "--negatives", "1", "--video-presentations", "2"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    for key in ("cascade_rate_ratio", "union_rate_ratio", "best_single_rate_ratio", "zxing_rate_ratio",
                "zbar_rate_ratio", "frame_p99_ms", "frame_max_ms", "misreads_count", "false_positives_count",
                "budget_ms", "time_to_read_p95_ms", "cascade_qrcode_rate_ratio", "union_qrcode_rate_ratio"):
        assert key in result, key
    assert result["budget_ms"] == 40.0
    assert result["false_positives_count"] == 0
    assert result["video_presentations_count"] == 2
    assert all(k == k.lower() for k in result)


def test_bench_decode_refuses_nonsense_parameters(capsys):
    import pytest

    with pytest.raises(SystemExit, match="budget-ms"):
        main(["bench", "decode", "--json", "--budget-ms", "0"])
