"""XCClassifier.resolved_params: the settings fit trains with, defaults resolved, validated like fit."""

from __future__ import annotations

import pytest
import torch

from sparsexc import XCClassifier
from sparsexc.errors import ConfigurationError, UnknownNameError
from sparsexc.estimator import DEFAULT_LR
from sparsexc.heads import get_head
from sparsexc.models import EncoderParams, SparseEncoder, XCModel
from sparsexc.train import Trainer, TrainParams


@pytest.mark.parametrize("head", ["softmax", "negative-sampling", "label-embedding"])
def test_optimizer_and_lr_default_to_the_heads(head):
    head_cls, head_params, encoder, train = XCClassifier(head=head, random_state=7).resolved_params()
    assert head_cls is get_head(head) and isinstance(head_params, head_cls.Params)
    assert isinstance(encoder, EncoderParams) and isinstance(train, TrainParams)
    assert train.optimizer == head_cls.default_optimizer
    assert train.lr == pytest.approx(DEFAULT_LR[head_cls.default_optimizer] * head_cls.default_lr_scale)
    assert train.seed == 7


def test_given_values_reach_their_params():
    clf = XCClassifier(
        head="sigmoid",
        head_params={"threshold": 0.3},
        hidden_sizes=(32, 16),
        dropout=0.1,
        optimizer="sgd",
        lr=0.2,
        momentum=0.9,
        epochs=3,
        batch_size=64,
        verbose=0,
    )
    _, head_params, encoder, train = clf.resolved_params()
    assert head_params.threshold == 0.3
    assert (encoder.hidden_sizes, encoder.dropout) == ((32, 16), 0.1)
    assert (train.optimizer, train.lr, train.momentum, train.epochs, train.batch_size) == ("sgd", 0.2, 0.9, 3, 64)
    assert not train.progress and not train.progress_bar


def test_fit_trains_the_model_the_resolved_params_describe(data):
    X, Y = data
    clf = XCClassifier(
        hidden_sizes=(16,),
        epochs=2,
        patience=None,
        validation_fraction=0.0,
        device="cpu",
        random_state=3,
        verbose=0,
        preprocess="none",  # the model below is trained on the raw X (the feature transform is resolved_preprocess's)
    )
    clf.fit(X, Y)
    head_cls, head_params, encoder_params, train = clf.resolved_params()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        encoder = SparseEncoder(X.shape[1], encoder_params)
        model = XCModel(encoder, head_cls(encoder.out_dim, Y.shape[1], head_params))
        Trainer(model, train).fit(X, Y)
    fitted = clf.model_.state_dict()
    assert fitted.keys() == model.state_dict().keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, fitted[name]), name


def test_bad_settings_raise_what_fit_raises():
    with pytest.raises(UnknownNameError, match="head='nope'"):
        XCClassifier(head="nope").resolved_params()
    with pytest.raises(ConfigurationError, match="head_params must be a dict"):
        XCClassifier(head_params=[1]).resolved_params()
    with pytest.raises(ConfigurationError, match="random_state"):
        XCClassifier(random_state="x").resolved_params()
