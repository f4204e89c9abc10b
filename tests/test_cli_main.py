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


def test_input_error_is_one_line_exit_3(capsys):
    assert main(["ingredients", "tag", "정제수", "--table", "nope"]) == 3
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


def _walk(command, path=()):
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            yield from _walk(sub, (*path, name))


def test_every_command_has_help_without_python_type_names(capsys):
    import typer.main

    from deeproot.cli import main as m

    walked = list(_walk(typer.main.get_command(m.app)))
    assert len(walked) > 10
    for path, command in walked:
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert "Usage: deeproot" in out, path
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        for python_name in ("<bool>", "<str>", "<int>", "<list[", "<path>", "<float>"):
            assert python_name not in out, (path, python_name)


def test_unexpected_oserror_is_one_line_exit_3(capsys):
    import typer

    from deeproot.cli import main as m

    @m.app.command("_oserror", hidden=True)
    def _oserror() -> None:
        open("/nonexistent-dir/\x1b[31mfile")  # noqa: SIM115

    assert main(["_oserror"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err
    assert err.startswith("error: cannot access /nonexistent-dir/file: No such file")
    del typer


def test_sigterm_is_a_clean_interrupt_exit_130(tmp_path):
    script = (
        "import os, signal, threading, time\n"
        "from deeproot.cli import main as m\n"
        "@m.app.command('_sleep', hidden=True)\n"
        "def _sleep() -> None:\n"
        "    print('ready', flush=True); time.sleep(30)\n"
        "raise SystemExit(m.main(['_sleep']))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert err == "interrupted\n"


def test_log_file_gets_timestamped_lines(tmp_path, capsys):
    import logging

    from deeproot.cli import main as m

    @m.app.command("_log", hidden=True)
    def _log() -> None:
        logging.getLogger("deeproot.test").info("hello from a command")

    log = tmp_path / "run.log"
    assert main(["--log-level", "info", "--log-file", str(log), "_log"]) == 0
    line = log.read_text(encoding="utf-8").strip().splitlines()[-1]
    assert line.endswith("INFO deeproot.test: hello from a command")
    assert line[:4].isdigit() and line[10] == "T" and line[19] == "Z"
    logging.basicConfig(level=logging.WARNING, force=True)


def test_bad_log_level_lists_the_choices(capsys):
    assert main(["--log-level", "loud", "ingredients", "tag", "x"]) == 2
    err = capsys.readouterr().err
    assert "debug" in err and "warning" in err


def test_catalog_import_is_wired_end_to_end(tmp_path, capsys):
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "id,title,maker,inci,won\n"
        "P1,두피 샴푸,브랜드A,\"정제수, 살리실릭애씨드, 멘톨\",\"12,000\"\n"
        ",이름 없음,브랜드B,정제수,1000\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    code = main([
        "catalog", "import", str(feed), "--map",
        "goods_no=id,name=title,brand=maker,ingredients=inci,price=won",
        "--category", "shampoo", "--data", str(data), "--json",
    ])
    out, err = capsys.readouterr()
    assert code == 0, err
    import json

    report = json.loads(out)
    assert report["build"]["n_products"] == 1
    assert main(["sql", "SELECT goods_no, price_sale, flags FROM products", "--db",
                 str(data / "catalog.duckdb"), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "goods_no,price_sale,flags", 'P1,12000,"[""hair_loss_functional""]"'
    ]


def test_free_of_is_one_option_for_recommend_and_diagnose(tmp_path, capsys, monkeypatch):
    import json
    from importlib import resources

    for cmd in (["recommend", "--type", "지성"], ["diagnose", "photo.jpg"]):
        assert main([*cmd, "--free-of", "sulfate_surfactant,soap"]) == 2
        err = capsys.readouterr().err
        assert "'soap' is not one of" in err and "'silicone'" in err
    photo = resources.files("deeproot") / "data" / "demo_photo.jpg"
    with resources.as_file(photo) as p:
        # an explicit --db that does not exist is an error, not an empty success
        assert main(["diagnose", str(p), "--lang", "en", "--db", str(tmp_path / "t.duckdb")]) == 3
        assert "t.duckdb does not exist; check --db" in capsys.readouterr().err
        monkeypatch.setenv("DEEPROOT_DATA_DIR", str(tmp_path))  # no catalog there: a warning
        code = main(["diagnose", str(p), "--json",
                     "--free-of", "sulfate_surfactant,silicone", "--free-of", "paraben"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out)["filters"]["free_of"] == ["sulfate_surfactant", "silicone", "paraben"]


@pytest.mark.parametrize("value", ["x" * 5000, "/tmp/" + "y" * 300 + "/data"])
def test_unusable_data_dir_is_one_line_naming_the_variable(value, monkeypatch, capsys):
    monkeypatch.setenv("DEEPROOT_DATA_DIR", value)
    assert main(["recommend", "--type", "지성"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: DEEPROOT_DATA_DIR is not a usable folder path (")
