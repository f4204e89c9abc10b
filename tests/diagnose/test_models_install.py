"""`deeproot models install|list`: checksums, safe unpacking, verified before install, atomic."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deeproot.cli.main import main
from deeproot.diagnose.install import install_bundle, list_bundles
from deeproot.errors import DataError, InputError

pytest.importorskip("onnx")

import diagnose_fakes as fakes  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return fakes.build_bundle(tmp_path_factory.mktemp("src") / "mybundle", demo=False)


@pytest.fixture()
def data(tmp_path: Path, monkeypatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("DEEPROOT_DATA_DIR", str(d))
    return d


def _tgz(folder: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return out


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f.name)  # bundle.json at the top
    return out


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_install_folder_zip_and_targz(bundle: Path, data: Path, tmp_path: Path) -> None:
    info = install_bundle(bundle, data_dir=data)
    assert info.path == data / "models" / "default" and info.used
    assert (info.path / "bundle.json").is_file()
    z = _zip(bundle, tmp_path / "b.zip")
    info = install_bundle(z, sha256=_sha(z), name="zipped", data_dir=data)
    assert info.sha256 == _sha(z) and info.source == str(z)
    t = _tgz(bundle, tmp_path / "b.tar.gz")
    install_bundle(t, sha256=f"sha256:{_sha(t).upper()}", name="tarred", data_dir=data)
    names = [b.name for b in list_bundles(data)]
    assert names[:3] == ["default", "tarred", "zipped"] and names[-1] == "(demo, shipped)"
    assert [b.used for b in list_bundles(data)][:3] == [True, False, False]
    assert not [
        p for p in (data / "models").iterdir() if p.name.startswith(".") and "lock" not in p.name
    ]


def test_wrong_checksum_installs_nothing_and_keeps_the_old(
    bundle: Path, data: Path, tmp_path: Path
) -> None:
    install_bundle(bundle, data_dir=data)
    before = (data / "models" / "default" / "bundle.json").read_bytes()
    t = _tgz(bundle, tmp_path / "b.tgz")
    with pytest.raises(InputError, match=r"SHA-256 is [0-9a-f]{64}, expected 0{64}; the file is"):
        install_bundle(t, sha256="0" * 64, data_dir=data)
    with pytest.raises(InputError, match="must be 64 hexadecimal digits"):
        install_bundle(t, sha256="abc", data_dir=data)
    assert (data / "models" / "default" / "bundle.json").read_bytes() == before


def test_a_bundle_that_does_not_load_is_not_installed(
    bundle: Path, data: Path, tmp_path: Path
) -> None:
    install_bundle(bundle, data_dir=data)
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    onnx_file = next(broken.glob("*.onnx"))
    onnx_file.write_bytes(b"not an onnx model")
    with pytest.raises(DataError, match="does not load in onnxruntime"):
        install_bundle(broken, data_dir=data)
    (broken / "bundle.json").write_text("{")
    with pytest.raises(DataError, match="bundle.json is not valid JSON"):
        install_bundle(broken, data_dir=data)
    info = list_bundles(data)[0]
    assert info.name == "default" and info.n_models >= 1  # the old bundle is untouched


def test_unsafe_archives_are_refused(bundle: Path, data: Path, tmp_path: Path, monkeypatch) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.txt", "x")
        zf.writestr("bundle.json", "{}")
    with pytest.raises(InputError, match=r"unsafe entry '../../escape.txt'"):
        install_bundle(evil, data_dir=data)
    assert not (tmp_path / "escape.txt").exists()
    link = tmp_path / "link.tgz"
    with tarfile.open(link, "w:gz") as tf:
        info = tarfile.TarInfo("bundle.json")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(InputError, match=r"unsafe entry 'bundle.json'"):
        install_bundle(link, data_dir=data)
    from deeproot.diagnose import install

    monkeypatch.setattr(install, "MAX_UNPACKED", 1000)
    with pytest.raises(InputError, match=r"unpacks to .* over the"):
        install_bundle(_tgz(bundle, tmp_path / "big.tgz"), data_dir=data)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InputError, match="not a bundle folder, a .zip or a .tar.gz archive"):
        install_bundle(notes, data_dir=data)
    with pytest.raises(InputError, match="no such file or folder"):
        install_bundle(tmp_path / "missing.zip", data_dir=data)
    with pytest.raises(InputError, match="bundle name"):
        install_bundle(bundle, name="../x", data_dir=data)


def test_interrupted_install_keeps_the_old_bundle(bundle: Path, data: Path, monkeypatch) -> None:
    install_bundle(bundle, data_dir=data)
    before = sorted(p.name for p in (data / "models" / "default").iterdir())
    real = shutil.copytree

    def interrupted(src, dst, **kw):  # noqa: ANN001, ANN003
        real(src, dst, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copytree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        install_bundle(bundle, name="default", data_dir=data)
    assert sorted(p.name for p in (data / "models" / "default").iterdir()) == before
    assert [p.name for p in (data / "models").iterdir() if ".installing-" in p.name] == []


@pytest.fixture()
def served(bundle: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    body = _tgz(bundle, tmp_path / "served.tgz").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path != "/b.tgz":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hashlib.sha256(body).hexdigest()
    server.shutdown()
    server.server_close()


def test_install_from_url_needs_and_checks_the_checksum(served, data: Path, capsys) -> None:
    base, sha = served
    assert main(["models", "install", f"{base}/b.tgz"]) == 3
    assert "a download needs --sha256 HEX" in capsys.readouterr().err
    assert main(["models", "install", f"{base}/b.tgz", "--sha256", sha, "--name", "web"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith(f"web: {data / 'models' / 'web'} (")
    assert "models: downloading" in cap.err
    assert main(["models", "install", f"{base}/missing.tgz", "--sha256", sha]) == 5
    assert "answered HTTP 404; retry later" in capsys.readouterr().err
    assert main(["models", "list", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["schema"] == "deeproot.models/1"
    web = next(b for b in j["bundles"] if b["name"] == "web")
    assert web["sha256"] == sha and web["source"] == f"{base}/b.tgz" and web["used"] is False


def test_installed_default_is_what_diagnose_uses(bundle: Path, data: Path, capsys) -> None:
    assert main(["models", "install", str(bundle)]) == 0
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"* default  {data / 'models' / 'default'}  ")
    photo = data / "p.jpg"
    fakes.scalp_image(seed=2).save(photo)
    assert main(["diagnose", str(photo), "--json", "--device", "cpu"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["model"]["bundle"] == str((data / "models" / "default").resolve())
    assert j["model"]["demo"] is False
