"""Every loss/activation/encoding combination the config accepts trains a step with the right shapes."""
import itertools
import math

import pytest
import torch

from pipeline.study.diagnosis import diagnose
from pipeline.core.vocabulary import LAST_ACTIVATIONS, LOSSES, TARGET_ENCODINGS
from pipeline.study.losses import (
    Head,
    encode_targets,
    head,
    make_loss,
    mismatch,
    predict,
)
from pipeline.study.model import build_mlp, layer_sizes, weight_penalty

COMBINATIONS = [(loss, encoding, activation)
                for loss, spec in LOSSES.items()
                for encoding, activation in itertools.product(spec.encodings, LAST_ACTIVATIONS)]


@pytest.mark.parametrize("loss,encoding,activation", COMBINATIONS)
def test_forward_loss_backward_and_predict(loss, encoding, activation):
    torch.manual_seed(0)
    outputs = TARGET_ENCODINGS[encoding]
    model = build_mlp(4, 8, 2, outputs, activation)
    labels = torch.tensor([0, 1, 1, 0, 1])
    targets = encode_targets(labels, encoding)
    out = model(torch.randn(5, 4))
    assert out.shape == (5, outputs)
    value = make_loss(loss)(out, targets)
    assert value.shape == () and torch.isfinite(value)
    value.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert predict(out, activation).shape == (5,)


def test_target_encodings_have_the_shapes_the_losses_want():
    labels = torch.tensor([0, 1, 1])
    assert encode_targets(labels, "float").shape == (3, 1)
    assert encode_targets(labels, "index").dtype == torch.int64
    assert encode_targets(labels, "onehot").tolist() == [[1, 0], [0, 1], [0, 1]]


def test_the_seed_architecture():
    model = build_mlp(4, 64, 2, 2, "LogSoftmax")
    assert layer_sizes(4, 64, 2, 2) == [4, 64, 64, 2]
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear", "ReLU", "Linear", "LogSoftmax"]
    assert [type(m).__name__ for m in build_mlp(4, 64, 2, 1, "none")][-1] == "Linear"


def test_penalties_cover_weights_only():
    model = build_mlp(2, 3, 1, 1, "none")
    weights = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
    l1 = sum(w.abs().sum() for w in weights)
    l2 = sum(w.pow(2).sum() for w in weights)
    assert torch.isclose(weight_penalty(weights, "l1", 0.5, 0.3), 0.5 * l1)
    assert torch.isclose(weight_penalty(weights, "l2", 0.5, 0.3), 0.5 * l2)
    assert torch.isclose(weight_penalty(weights, "elasticnet", 0.5, 0.3), 0.5 * (0.3 * l1 + 0.7 * l2))


def test_mismatches_are_recognised_before_training():
    assert "unbounded below" in mismatch("NLLLoss", "ReLU")
    assert "unbounded below" in mismatch("KLDivLoss", "ReLU")
    assert "log-probabilities" in mismatch("NLLLoss", "Sigmoid")
    assert "already gives" in mismatch("CrossEntropyLoss", "Softmax")
    for sound in (("NLLLoss", "LogSoftmax"), ("KLDivLoss", "LogSoftmax"), ("CrossEntropyLoss", "none"),
                  ("MSELoss", "Sigmoid"), ("BCEWithLogitsLoss", "none")):
        assert mismatch(*sound) is None


NO_ONE_CLASS = [[30, 10], [8, 20]]


def test_diagnosis_of_a_loss_running_off_to_minus_infinity():
    train = [-0.3, -1.0, -2.4, -5.1, -9.9, -17.5]
    result = diagnose(train, [-20.0], 0.0, "NLLLoss", [[40, 0], [28, 0]])
    assert result["status"] == "diverging"
    assert "below NLLLoss's lower bound" in result["reason"] and "predicted as class 0" in result["reason"]


def test_diagnosis_below_the_bound_but_settling():
    result = diagnose([-0.5, -0.9, -0.7, -0.8, -0.75], [-0.7], 0.0, "KLDivLoss", NO_ONE_CLASS)
    assert result["status"] == "below_lower_bound"


def test_diagnosis_of_dead_relu_outputs():
    assert diagnose([0.0, 0.0, 0.0], [0.0], 0.0, "NLLLoss", [[40, 0], [28, 0]])["status"] == "stalled"


def test_diagnosis_of_a_sound_run():
    assert diagnose([0.6, 0.5, 0.45], [0.5, 0.48, 0.47], 0.0, "NLLLoss", NO_ONE_CLASS) == {
        "status": "ok", "reason": "loss stayed within its bounds"}


def test_on_k_classes_a_variant_takes_k_outputs_and_a_float_target_becomes_one_hot():
    # As written on two classes.
    assert head("MSELoss", "float", "Sigmoid", 2) == Head("float", 1, "Sigmoid")
    assert head("CrossEntropyLoss", "index", "none", 2) == Head("index", 2, "none")
    # On ten: Sigmoid's one probability becomes Softmax's distribution, the rest keep their activation.
    assert head("MSELoss", "float", "Sigmoid", 10) == Head("onehot", 10, "Softmax")
    assert head("L1Loss", "float", "Tanh", 10) == Head("onehot", 10, "Tanh")
    assert head("BCEWithLogitsLoss", "float", "none", 3) == Head("onehot", 3, "none")
    assert head("NLLLoss", "index", "ReLU", 10) == Head("index", 10, "ReLU")
    assert head("KLDivLoss", "onehot", "LogSoftmax", 3) == Head("onehot", 3, "LogSoftmax")
    # Every loss that takes a float target also takes one-hot ones: none is n/a on K classes.
    assert all("onehot" in spec.encodings for spec in LOSSES.values() if "float" in spec.encodings)
    labels = torch.tensor([0, 2, 1, 2])
    assert encode_targets(labels, "onehot", 3).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]
    assert predict(torch.tensor([[0.1, 0.7, 0.2], [3.0, -1.0, 0.0]]), "Softmax").tolist() == [1, 0]


def test_a_loss_that_cannot_take_k_classes_says_why(monkeypatch):
    from pipeline.core import vocabulary

    monkeypatch.setitem(vocabulary.LOSSES, "FloatOnly", vocabulary.LossSpec("float_only", ("float",), "any"))
    assert head("FloatOnly", "float", "Sigmoid", 3) == ("FloatOnly takes one 0/1 float output, which cannot tell "
                                                         "3 classes apart, and no one-hot targets")
    assert head("FloatOnly", "float", "Sigmoid", 2) == Head("float", 1, "Sigmoid")


def test_the_diagnosis_names_the_one_class_every_row_is_given_on_k_classes():
    confusion = [[0, 5, 0], [0, 7, 0], [0, 3, 0]]
    found = diagnose([1.0, 0.9, 0.8], [1.0, 0.9, 0.85], 0.0, "MSELoss", confusion)
    assert found["reason"].endswith("every validation row is predicted as class 1")


# The project's own losses (losses/) against their papers' formulas, on made-up numbers whose
# answer is worked out here by hand: two classes, logits (0, ln 3), so p(true class 1) = 3/4.
def test_focal_loss_is_lin_et_al_eq_4():
    from losses.focal import FocalLoss

    logits, target = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1])
    assert FocalLoss(gamma=2.0)(logits, target).item() == pytest.approx(-(1 / 4) ** 2 * math.log(3 / 4))
    assert FocalLoss(gamma=0.0)(logits, target).item() == pytest.approx(-math.log(3 / 4))  # cross-entropy


def test_poly_1_is_leng_et_al_eq_3():
    from losses.poly import Poly1Loss

    logits, target = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1])
    assert Poly1Loss(epsilon=1.0)(logits, target).item() == pytest.approx(-math.log(3 / 4) + 1 / 4)
    assert Poly1Loss(epsilon=0.0)(logits, target).item() == pytest.approx(-math.log(3 / 4))


def test_squentropy_is_hui_belkin_and_wright_eq_1():
    from losses.squentropy import squentropy

    # Three classes, logits (1, 2, 3), true class 0: cross-entropy plus (2^2 + 3^2) / (3 - 1).
    logits, target = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([0])
    softmax = math.exp(1) / (math.exp(1) + math.exp(2) + math.exp(3))
    assert squentropy(logits, target).item() == pytest.approx(-math.log(softmax) + 13 / 2)
    # A batch is the mean of its rows.
    two = squentropy(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), torch.tensor([0, 2]))
    assert two.item() == pytest.approx((-math.log(softmax) + 13 / 2 + math.log(3)) / 2)


def test_label_smoothing_reaches_the_loss_as_szegedy_et_al_define_it():
    """loss_args reach torch's class: (1 - e) * cross-entropy + e * the mean over classes of -log p."""
    logits, target = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1])
    value = make_loss("CrossEntropyLoss", {"label_smoothing": 0.1})(logits, target).item()
    assert value == pytest.approx(0.9 * -math.log(3 / 4) + 0.1 * (-math.log(1 / 4) - math.log(3 / 4)) / 2)


def test_a_loss_of_your_own_reads_what_it_says_and_serves_probabilities_by_it():
    from pipeline.study.scores import probability_rule

    assert mismatch("losses.mine:mine", "LogSoftmax", "logits").startswith("losses.mine:mine reads raw logits")
    assert mismatch("losses.mine:mine", "none", "probabilities").endswith("use Softmax (Sigmoid on one output)")
    assert mismatch("losses.mine:mine", "LogSoftmax", "log_probabilities") is None
    assert [probability_rule("losses.mine:mine", last, wants) for last, wants in (
        ("none", "logits"), ("LogSoftmax", "log_probabilities"), ("Softmax", "probabilities"), ("Tanh", "any"))
    ] == ["softmax", "softmax", "as_is", "clipped"]
    # Any target encoding; on K classes its float target becomes one-hot like torch's regressions.
    assert head("losses.mine:mine", "float", "Sigmoid", 3, "any") == Head("onehot", 3, "Softmax")


def test_the_cosine_loss_is_torchs_to_a_few_units_in_the_last_place_with_an_ieee_square_root():
    """CosineEmbeddingLoss on (output, one-hot target, y = 1), computed without torch's float sqrt
    (MKL's vector math, not correctly rounded, its last bits another on another CPU)."""
    import numpy as np
    import torch
    import torch.nn as nn

    from pipeline.study.losses import cosine_to_one, make_loss, replica_loss

    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(200, 3, generator=generator, dtype=torch.float64)
    targets = nn.functional.one_hot(torch.randint(0, 3, (200,), generator=generator), 3).double()
    torchs = nn.CosineEmbeddingLoss(reduction="none")(outputs, targets, outputs.new_ones(200))
    torch.testing.assert_close(cosine_to_one(outputs, targets), torchs, rtol=1e-15, atol=1e-15)
    small = outputs.float()
    assert float(make_loss("CosineEmbeddingLoss")(small, targets.float())) == pytest.approx(
        float(nn.CosineEmbeddingLoss()(small, targets.float(), small.new_ones(200))), rel=1e-6)
    stacked = replica_loss("CosineEmbeddingLoss")(small.view(4, 50, 3), targets.float().view(4, 50, 3))
    assert stacked.shape == (4,)
    # The square root it takes is IEEE's: 1 / sqrt(x) exactly as numpy rounds it, on any CPU.
    x = np.random.default_rng(0).random(100_000, dtype=np.float32) * 10
    assert (torch.rsqrt(torch.from_numpy(x)).numpy() == np.float32(1) / np.sqrt(x)).all()
