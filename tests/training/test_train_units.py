"""Metrics, class weights, sizes and temperature fitting: exact values on small inputs."""

from __future__ import annotations

import numpy as np
import pytest

from deeproot.errors import InputError
from deeproot.training.metrics import confusion, expected_calibration_error, summarize, to_classes
from deeproot.training.train import TrainConfig, class_weights, parse_size, preprocess_for


def test_merge_to_three_classes() -> None:
    assert to_classes([0, 1, 2, 3], 3).tolist() == [0, 1, 1, 2]
    assert to_classes([0, 1, 2, 3], 4).tolist() == [0, 1, 2, 3]


def test_summarize_exact_values() -> None:
    y = [0, 0, 0, 0, 1, 1, 2, 2]
    p = [0, 0, 0, 1, 1, 2, 2, 2]
    m = summarize(y, p, 3)
    assert m["confusion"] == [[3, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert m["accuracy"] == 0.75
    assert m["balanced_accuracy"] == pytest.approx((0.75 + 0.5 + 1.0) / 3, abs=1e-6)
    f1 = [2 * 1 * 0.75 / 1.75, 2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) * 1 / (5 / 3)]
    assert m["macro_f1"] == pytest.approx(np.mean(f1), abs=1e-6)
    # majority: always class 0 -> accuracy 0.5, F1 of class 0 = 2/3, averaged over 3 classes
    assert (m["majority_class"], m["majority_accuracy"]) == (0, 0.5)
    assert m["majority_macro_f1"] == pytest.approx((2 / 3) / 3, abs=1e-6)
    assert m["majority_balanced_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert summarize(y, y, 3)["qwk"] == 1.0
    assert summarize(y, [2, 2, 2, 2, 1, 1, 0, 0], 3)["qwk"] < 0


def test_confusion_and_ece() -> None:
    assert confusion([1, 1], [0, 1], 2).tolist() == [[0, 0], [1, 1]]
    probs = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(probs, [0, 1]) == pytest.approx(0.4)


def test_class_weights_inverse_frequency() -> None:
    w = class_weights([0, 0, 0, 1], 3)
    assert w.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


def test_sizes_and_seed_grayscale_recipe() -> None:
    assert parse_size("240") == (240, 240) and parse_size("180x240") == (180, 240)
    with pytest.raises(InputError, match="--size must be N or HxW"):
        parse_size("big")
    cfg = TrainConfig(index="i", out="o")
    assert preprocess_for(cfg, ("dandruff",)).grayscale is True
    assert preprocess_for(cfg, ("interfollicular_erythema",)).grayscale is False
    assert preprocess_for(cfg, ("dandruff", "hair_loss")).grayscale is False


def test_arch_choices() -> None:
    from dataclasses import replace

    cfg = TrainConfig(index="i", out="o")
    assert cfg.arch == "b1"  # runs recorded before --arch existed load as B1
    replace(cfg, arch="tiny").check()
    with pytest.raises(InputError, match="--arch must be one of b1, tiny"):
        replace(cfg, arch="resnet").check()
    with pytest.raises(InputError, match="--pretrained and --weights need --arch b1"):
        replace(cfg, arch="tiny", pretrained=True).check()
    from deeproot.training.models import MultiHead

    with pytest.raises(InputError, match="unknown architecture 'vgg'"):
        MultiHead(("hair_loss",), 3, arch="vgg")


def test_temperature_fit_recovers_known_temperature() -> None:
    from deeproot.training.export import fit_temperature

    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, (4000, 3))
    p = np.exp(true) / np.exp(true).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    # logits that are 2.5x too confident: the fitted temperature should undo it
    assert fit_temperature(true * 2.5, y) == pytest.approx(2.5, rel=0.1)


def test_pretrained_reads_the_torch_cache_and_never_downloads(
    tmp_path,
    monkeypatch,
    tiny,
    capsys,  # noqa: ANN001
) -> None:
    import torch
    from torchvision.models import efficientnet_b1

    from deeproot.cli.main import main
    from deeproot.training.models import build_model, imagenet_weights_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "efficientnet_b1_rwightman-bac287d4.pth"
    with pytest.raises(InputError) as err:
        imagenet_weights_file()
    msg = str(err.value)
    assert f"ImageNet weights are not in the torch cache ({expected})" in msg
    assert "efficientnet_b1(weights='IMAGENET1K_V1')" in msg and "--weights FILE" in msg
    code = main(["train", "--index", str(tiny), "--out", str(tmp_path / "r"), "--pretrained"])
    err_text = capsys.readouterr().err.strip()
    assert code == 3 and err_text.startswith("error: ImageNet weights") and "\n" not in err_text
    # a cached file (here: random torchvision weights standing in for ImageNet's) is used
    expected.parent.mkdir(parents=True)
    ref = efficientnet_b1(weights=None).state_dict()
    torch.save(ref, expected)
    model = build_model(("hair_loss",), 3, pretrained=True)
    own = model.state_dict()
    for k, v in ref.items():
        if k.startswith("features."):
            assert torch.equal(own["backbone." + k[len("features.") :]], v), k
