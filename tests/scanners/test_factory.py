"""Building scanners from gate config."""
from __future__ import annotations

import pytest

from scanners.camera import CameraScanner
from scanners.factory import open_scanner
from scanners.hid import HidScanner
from scanners.serial import SerialScanner
from scanners.sim import SimScanner
from tickets.errors import ConfigError, GatehouseError


def test_each_backend_is_built_from_its_config():
    assert isinstance(open_scanner({"backend": "sim"}), SimScanner)
    s = open_scanner({"backend": "serial", "port": "/dev/ttyACM0", "baud": 115200, "terminator": "crlf",
                      "prefix": "]Q1"})
    assert isinstance(s, SerialScanner) and s.baud == 115200
    assert isinstance(open_scanner({"backend": "hid", "device": "/dev/input/event3"}), HidScanner)
    cam = open_scanner({"backend": "camera", "device": 0, "budget_ms": 30, "repeat_suppress_s": 1.5,
                        "width": 1280, "height": 720})
    assert isinstance(cam, CameraScanner) and cam.cascade.budget_ms == 30
    assert cam.suppressor.window_s == 1.5 and not cam.lossless


def test_camera_on_a_video_file_decodes_every_frame():
    cam = open_scanner({"backend": "camera", "device": "/tmp/gate.avi"})
    assert cam.lossless and cam.end_at_eof


@pytest.mark.parametrize(("config", "key"), [
    ({"backend": "laser"}, "scanner.backend"),
    ({}, "scanner.backend"),
    ({"backend": "serial"}, "scanner.port"),
    ({"backend": "serial", "port": "/dev/x", "baud": "fast"}, "scanner.baud"),
    ({"backend": "serial", "port": "/dev/x", "baud": 0}, "scanner.baud"),
    ({"backend": "serial", "port": "/dev/x", "terminator": "NUL"}, "scanner.terminator"),
    ({"backend": "serial", "port": "/dev/x", "parity": "E"}, "scanner.parity"),
    ({"backend": "hid"}, "scanner.device"),
    ({"backend": "hid", "device": "/dev/x", "grab": "yes"}, "scanner.grab"),
    ({"backend": "camera", "budget_ms": -1}, "scanner.budget_ms"),
    ({"backend": "camera", "budget_ms": True}, "scanner.budget_ms"),
    ({"backend": "camera", "driver": "gstreamer"}, "scanner.driver"),
    ({"backend": "camera", "width": 640}, "scanner.width"),
    ({"backend": "camera", "repeat_suppress_s": -1}, "scanner.repeat_suppress_s"),
])
def test_bad_config_is_a_config_error_naming_the_key(config, key):
    with pytest.raises(ConfigError) as info:
        open_scanner(config)
    assert info.value.key == key
    assert isinstance(info.value, GatehouseError)


def test_config_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError):
        open_scanner(["camera"])  # type: ignore[arg-type]


def test_the_deployed_example_scanner_section_is_accepted():
    # deploy/pi/gate.toml.example [scanner]
    cam = open_scanner({"backend": "camera", "device": 0, "budget_ms": 40, "repeat_suppress_s": 3.0})
    assert isinstance(cam, CameraScanner) and cam.suppressor.window_s == 3.0
    ser = open_scanner({"backend": "serial", "port": "/dev/gatehouse-scanner", "baud": 9600, "terminator": "CR"})
    assert isinstance(ser, SerialScanner)
