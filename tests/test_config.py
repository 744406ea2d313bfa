import pytest
import yaml

from pipeline.core import config
from pipeline.core.errors import PipelineError

from .conftest import ROOT


def test_project_params_are_valid_and_hold_every_variant():
    params = config.load(ROOT / "params.yaml")
    assert {"l1", "mse", "nll_relu", "nll_logsoftmax", "cross_entropy", "kldiv_relu", "kldiv_logsoftmax",
            "cosine_embedding", "bce_with_logits", "cross_entropy_l1", "cross_entropy_l2",
            "cross_entropy_elasticnet"} <= set(params.variants)
    nll = params.variants["nll_relu"]
    assert (nll.loss, nll.last_activation, nll.target_encoding, nll.outputs) == ("NLLLoss", "ReLU", "index", 2)
    assert nll.training.epochs == 20 and nll.training.lr == 0.001 and nll.training.batch_size == 32
    assert params.variants["cross_entropy_l2"].training.regularization.penalty == "l2"
    assert params.variants["nll_relu"].contrast == params.variants["nll_logsoftmax"].contrast == "nll"


def test_a_variant_overrides_shared_training_settings():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["variants"]["mse"]["epochs"] = 3
    raw["variants"]["mse"]["lr"] = 0.01
    params = config.parse(raw)
    assert params.variants["mse"].training.epochs == 3
    assert params.variants["mse"].training.lr == 0.01
    assert params.variants["l1"].training.epochs == 20


def test_every_problem_is_reported_together_with_its_key():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["variants"]["l1"]["loss"] = "NLLoss"
    raw["variants"]["mse"]["last_activation"] = "Softplus"
    raw["variants"]["nll_relu"]["target_encoding"] = "ordinal"
    raw["variants"]["cross_entropy"]["target_encoding"] = "float"
    raw["variants"]["kldiv_relu"]["epochs"] = 0
    raw["train"]["lr"] = 0
    raw["train"]["hidden_size"] = -1
    raw["datasets"]["titanic"]["colour"] = "red"
    with pytest.raises(PipelineError) as caught:
        config.parse(raw)
    message = str(caught.value)
    assert "\n" not in message
    for expected in ("variants.l1.loss: unknown value 'NLLoss'", "variants.mse.last_activation",
                     "variants.nll_relu.target_encoding: unknown value 'ordinal'",
                     "variants.cross_entropy.target_encoding: CrossEntropyLoss cannot take 'float'",
                     "variants.kldiv_relu.epochs: must be >= 1", "train.lr: must be > 0",
                     "train.hidden_size: must be >= 1", "datasets.titanic.colour: unknown key"):
        assert expected in message


def test_class_indices_for_mse_with_two_outputs_are_refused():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["variants"]["mse"].update(target_encoding="index", outputs=2)
    with pytest.raises(PipelineError, match="variants.mse.target_encoding: MSELoss cannot take 'index'"):
        config.parse(raw)


def test_missing_and_malformed_params_files(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        config.load(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 42\nvariants: [unclosed\n")
    with pytest.raises(PipelineError, match="is not valid YAML"):
        config.load(bad)


def test_unknown_variant_name_is_named():
    params = config.load(ROOT / "params.yaml")
    with pytest.raises(PipelineError, match="no variant named 'nll_tanh'"):
        params.variant("nll_tanh")
