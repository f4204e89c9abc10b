"""Issue 11 (the person with a photo) and issues 10/14 in diagnose: the output at 80 columns in
both languages, one language per run, --quiet, product filters, badges and the sold-out mark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deeproot.cli._options import FREE_OF_FAMILIES
from deeproot.cli.diagnose import display_width, wrap
from deeproot.cli.main import main

pytest.importorskip("onnx")

import diagnose_fakes as fakes  # noqa: E402

LONG_NAME = (
    "[데모] 아주 긴 이름의 두피 스케일링 딥클렌징 탈모 증상 완화 기능성 샴푸"
    " 대용량 1000ml 리필 기획 세트"
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return fakes.build_bundle(tmp_path_factory.mktemp("out") / "b")


@pytest.fixture()
def fake_catalog(monkeypatch) -> list[dict]:
    """recommend() replaced by one returning long, flagged, sold-out picks; calls recorded."""
    from deeproot.catalog import recommend as rec
    from deeproot.taxonomy import category

    calls: list[dict] = []

    def fake(db_path, *, types, categories=None, top=3, **kw):  # noqa: ANN001, ANN003
        calls.append({"types": types, **kw})
        picks = tuple(
            rec.Pick(
                rank=i + 1,
                goods_no=f"A00000018422{i}",
                name=LONG_NAME,
                brand="데모브랜드",
                rating=4.5,
                review_count=12345,
                price_sale=19900,
                price_list=25000,
                currency="KRW",
                image_url=None,
                product_url=f"https://www.oliveyoung.co.kr/store/goods/getGoodsDetail.do?goodsNo=A00000018422{i}",
                score=4.5,
                matched=(
                    rec.MatchedIngredient("탈모", "나이아신아마이드", "나이아신아마이드"),
                    rec.MatchedIngredient("탈모", "살리실릭애씨드", "살리실릭애씨드"),
                ),
                sold_out=i == 1,
                allergens=("리모넨", "리날룰") if i == 2 else (),
                free_of=("silicone", "paraben", "mineral_oil", "synthetic_colour"),
                hair_loss_functional_claim=i == 0,
            )
            for i in range(3)
        )
        cats = [category(c) for c in (categories or ["shampoo"])]
        return rec.RecommendationSet(
            types=tuple(types),
            table_types=(),
            table="extended",
            ranking="seed",
            top=top,
            all_brands=False,
            categories=tuple(rec.CategoryPicks(c.key, c.ko, picks, 40, 120) for c in cats),
        )

    monkeypatch.setattr(rec, "recommend", fake)
    return calls


@pytest.fixture()
def photo(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("DEEPROOT_DATA_DIR", str(tmp_path / "data"))
    p = tmp_path / "scalp.jpg"
    fakes.scalp_image(seed=5).save(p, quality=92)
    return p


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_output_fits_80_columns(
    bundle: Path, photo: Path, fake_catalog, capsys, monkeypatch, lang: str
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = _run(
        [
            "diagnose",
            str(photo),
            "--models",
            str(bundle),
            "--device",
            "cpu",
            "--lang",
            lang,
            "--survey-type",
            "건성",
            "--concern",
            "탈모",
            "--category",
            "shampoo",
            "--category",
            "scalp_tonic",
            "--include-sold-out",
            "--free-of",
            "silicone",
            "--no-allergens",
        ],
        capsys,
    )
    assert code == 0, err
    lines = out.splitlines() + err.splitlines()
    too_long = [line for line in lines if display_width(line) > 80]
    assert too_long == []
    assert len(out.splitlines()) > 40  # guide and products were printed
    assert LONG_NAME.split()[-1] in out  # long names wrapped, not cut
    if lang == "en":
        assert "[SOLD OUT]" in out and "fragrance allergens: " in out
        assert "free of: silicone, paraben, mineral oil, synthetic colour" in out
        assert "matched: Niacinamide, Salicylic Acid" in out  # MFDS English names
        assert "hair-loss functional cosmetic" in out
        assert "oliveyoung.co.kr/store/goods/getGoodsDetail.do?goodsNo=A000000184220" in out
    else:
        assert "[품절]" in out and "알레르기 유발 향료 성분: 리모넨, 리날룰" in out
        assert "무첨가: 실리콘, 파라벤, 광물성 오일" in out
        assert "성분: 나이아신아마이드, 살리실릭애씨드" in out
        # one language: every line on stderr is Korean except the paths and the banner's command
        assert "warning" not in err and "model:" not in err and "모델: " in err
    assert {(c["free_of"], c["no_allergens"], c["include_sold_out"]) for c in fake_catalog} == {
        (("silicone",), True, True)
    }


@pytest.mark.parametrize("hair_loss", [0, 1, 2])
def test_prefer_functional_when_hair_loss_is_seen(
    bundle: Path, photo: Path, fake_catalog, capsys, monkeypatch, hair_loss: int
) -> None:
    import numpy as np

    from deeproot.diagnose import infer
    from deeproot.taxonomy import SYMPTOM_KEYS

    def fixed(self, inputs):  # noqa: ANN001
        one_hot = {k: np.eye(3)[hair_loss if k == "hair_loss" else 0] for k in SYMPTOM_KEYS}
        return [one_hot for _ in inputs]

    monkeypatch.setattr(infer.Engine, "predict_prepared", fixed)
    code, out, _ = _run(
        ["diagnose", str(photo), "--models", str(bundle), "--device", "cpu", "--json"], capsys
    )
    j = json.loads(out)
    sev = {s["symptom"]: s["severity"] for s in j["photos"][0]["diagnosis"]["symptoms"]}
    assert sev["hair_loss"] == hair_loss
    assert [c["prefer_functional"] for c in fake_catalog] == [hair_loss > 0]
    assert j["filters"] == {"free_of": [], "no_allergens": False, "include_sold_out": False}


@pytest.mark.parametrize("where", ["command", "global"])
def test_quiet_prints_no_banner_or_model(
    bundle: Path, photo: Path, capsys, monkeypatch, where: str
) -> None:
    args = ["diagnose", str(photo), "--models", str(bundle), "--device", "cpu"]
    args = [*args, "--quiet"] if where == "command" else ["-q", *args]
    code, out, err = _run(args, capsys)
    assert code == 0
    assert err == ""  # no banner, no model path, no catalog warning
    assert out.splitlines()[0] == "(데모 모델 결과: 의학적 평가가 아님)"


def test_quiet_still_prints_errors(
    bundle: Path, photo: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    code, _, err = _run(
        ["diagnose", str(bad), str(photo), "--models", str(bundle), "--quiet", "--lang", "en"],
        capsys,
    )
    assert code == 3
    assert (
        err.splitlines()[0]
        == f"error: {bad}: not an image; deeproot reads JPEG, PNG or WebP photos"
    )


def test_control_characters_in_names_are_not_echoed(
    bundle: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the line holds the tmp path: keep it on one line
    evil = tmp_path / "x\x1b[2J\x07\u202e.jpg"
    fakes.scalp_image(seed=1).save(evil, format="JPEG")
    code, out, err = _run(["diagnose", str(evil), "--models", str(bundle), "--lang", "en"], capsys)
    assert code == 0
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert f"{tmp_path}/x.jpg (640x480)" in out.splitlines()


def test_free_of_choices_match_the_ingredient_flags() -> None:
    from deeproot.ingredients.flags import FREE_OF

    assert FREE_OF_FAMILIES == FREE_OF


def test_wrap_by_display_width() -> None:
    line = "    참고: " + "가나다라마바사 " * 20
    out = wrap(line, 40)
    assert all(display_width(x) <= 40 for x in out)
    assert out[1].startswith("          ") and not out[1].startswith("           ")  # hang
    assert wrap("short", 40) == ["short"]
    url = "https://example.com/" + "x" * 100
    assert all(display_width(x) <= 40 for x in wrap("  " + url, 40))


def test_korean_run_explains_a_missing_catalog_in_korean(
    bundle: Path, photo: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("DEEPROOT_DATA_DIR", str(tmp_path))
    missing = tmp_path / "catalog.duckdb"
    code, _, err = _run(["diagnose", str(photo), "--models", str(bundle)], capsys)
    assert code == 0
    assert f"경고: 추천 제품 없음: 카탈로그 데이터베이스 {missing} 이(가) 없습니다." in err
    assert "no catalog" not in err and "build it with" not in err
    # an explicit --db that is not there is an error (a typo must not pass as "no products")
    code, _, err = _run(
        ["diagnose", str(photo), "--models", str(bundle), "--db", str(tmp_path / "x.duckdb")],
        capsys,
    )
    assert code == 3
    x = tmp_path / "x.duckdb"
    assert err == f"error: 카탈로그 데이터베이스 {x} 이(가) 없습니다; --db 를 확인하거나 빼세요\n"


def test_sensitive_scalp_sees_allergens_on_every_product() -> None:
    from deeproot.catalog import recommend as rec
    from deeproot.cli.diagnose import _pick_lines

    def pick(allergens, free_of):  # noqa: ANN001, ANN202
        return rec.Pick(
            1,
            "A1",
            "샴푸",
            "브랜드",
            4.0,
            10,
            None,
            None,
            None,
            None,
            None,
            4.0,
            (),
            allergens=allergens,
            free_of=free_of,
        )

    with_allergen = _pick_lines(pick(("리모넨",), ()), "ko", "  ", 80, sensitive=True)
    assert "     ! 알레르기 유발 향료 성분: 리모넨" in with_allergen
    assert "     알레르기 유발 향료 성분: 없음" in _pick_lines(
        pick((), ()), "ko", "  ", 80, sensitive=True
    )
    assert "     fragrance allergens: unknown (no ingredient list)" in _pick_lines(
        pick((), None), "en", "  ", 80, sensitive=True
    )
    assert not any("allergen" in x for x in _pick_lines(pick((), ()), "en", "  ", 80))
