"""The entry point: version, one-line errors, debug tracebacks, light start-up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deeproot.cli.main import main
from deeproot.errors import MissingExtraError, require


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == "deeproot 0.1.0\n"


def test_deeproot_error_is_one_line_exit_1(capsys):
    assert main(["ingredients", "tag", "정제수", "--table", "nope"]) == 1
    err = capsys.readouterr().err
    assert err == "error: unknown table 'nope'; valid: seed, extended\n"


def test_debug_shows_the_traceback(monkeypatch):
    from deeproot.errors import InputError

    monkeypatch.setenv("DEEPROOT_DEBUG", "1")
    with pytest.raises(InputError):
        main(["ingredients", "tag", "정제수", "--table", "nope"])


def test_usage_error_exit_2(capsys):
    assert main(["ingredients", "tag", "--no-such-option"]) == 2
    assert "No such option" in capsys.readouterr().err


def test_missing_extra_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"pip install 'deeproot\[infer\]'"):
        require("deeproot_no_such_module", "infer")


def test_start_up_imports_nothing_heavy():
    code = (
        "import sys, deeproot.cli.main as m\n"
        "heavy = ('torch', 'torchvision', 'scrapy', 'twisted', 'playwright', 'onnxruntime',"
        " 'numpy', 'PIL', 'pandas', 'duckdb', 'pyarrow', 'rapidfuzz')\n"
        "print(','.join(h for h in heavy if h in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == ""


def test_exit_codes_from_commands_are_kept(monkeypatch):
    import typer

    from deeproot.cli import main as m

    @m.app.command("_exit7", hidden=True)
    def _exit7() -> None:
        raise typer.Exit(7)

    assert main(["_exit7"]) == 7
