"""`spanlake ui`: flags, the streamlit command line, and the optional password gate."""

from __future__ import annotations

import pytest
from spanlake.collector.settings import load_settings
from spanlake.ui.cli import UI_APP, build_parser, exposure_warning, ui_command
from streamlit.testing.v1 import AppTest


def test_ui_flags_and_loopback_default() -> None:
    args = build_parser().parse_args(["ui", "--data-dir", "/tmp/x", "--port", "9000"])
    assert (args.host, args.port, str(args.data_dir)) == (None, 9000, "/tmp/x")
    command = ui_command(UI_APP, "127.0.0.1", 9000)
    assert command[1:4] == ["-m", "streamlit", "run"] and UI_APP.exists()
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "9000"
    assert command[command.index("--browser.gatherUsageStats") + 1] == "false"


def test_exposed_without_password_warns() -> None:
    assert exposure_warning("127.0.0.1", None) is None
    assert exposure_warning("0.0.0.0", "s3cret") is None
    assert "SPANLAKE_UI_PASSWORD" in (exposure_warning("0.0.0.0", None) or "")


def test_ui_password_setting_from_env() -> None:
    assert load_settings({}, {"SPANLAKE_UI_PASSWORD": "pw"}).ui_password == "pw"
    assert load_settings({}, {"SPANLAKE_UI_PASSWORD": ""}).ui_password is None


def test_password_gate(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANLAKE_UI_PASSWORD", "s3cret")
    app.run()
    assert not app.metric and app.text_input[0].label == "Password"
    app.text_input[0].input("wrong").run()
    assert app.error[0].value == "Wrong password." and not app.metric
    app.text_input[0].input("s3cret").run()
    assert not app.exception
    assert any(m.label == "Requests" for m in app.metric)
