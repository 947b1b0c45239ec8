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


def test_a_file_camera_plays_its_video_as_a_live_camera():
    cam = open_scanner({"backend": "camera", "device": "file:/tmp/gate.avi"})
    assert cam.realtime_file and not cam.lossless and not cam.end_at_eof and not cam.is_file


def test_decoding_defaults_are_strict_and_the_venue_can_widen_them():
    cam = open_scanner({"backend": "camera"})
    options = cam.cascade.options
    assert options.symbologies == {"qrcode", "pdf417", "code128", "ean13", "itf"}
    assert options.itf_lengths == {14} and options.itf_check_digit
    venue = open_scanner({"backend": "camera", "symbologies": ["QRCode", "itf", "code39"], "itf_lengths": [10, 14],
                          "itf_check_digit": False, "decode_threads": 1})
    options = venue.cascade.options
    assert options.symbologies == {"qrcode", "itf", "code39"}
    assert options.itf_lengths == {10, 14} and not options.itf_check_digit
    assert venue.cascade.threads == 1


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
    ({"backend": "camera", "symbologies": "qrcode"}, "scanner.symbologies"),
    ({"backend": "camera", "symbologies": ["qrcode", "aztec"]}, "scanner.symbologies"),
    ({"backend": "camera", "symbologies": []}, "scanner.symbologies"),
    ({"backend": "camera", "itf_lengths": [13]}, "scanner.itf_lengths"),
    ({"backend": "camera", "itf_lengths": ["14"]}, "scanner.itf_lengths.0"),
    ({"backend": "camera", "itf_lengths": []}, "scanner.itf_lengths"),
    ({"backend": "camera", "itf_check_digit": "no"}, "scanner.itf_check_digit"),
    ({"backend": "camera", "decode_threads": 4}, "scanner.decode_threads"),
    ({"backend": "camera", "decode_threads": True}, "scanner.decode_threads"),
    ({"backend": "serial", "port": "/dev/x", "symbologies": ["qrcode"]}, "scanner.symbologies"),
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
