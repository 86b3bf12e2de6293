"""Typed parameter dataclasses: JSON round trips and validation messages."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc._params import LR_SCHEDULES, OPTIMIZERS, EncoderParams, TrainParams
from sparsexc.heads import SigmoidHeadParams, SoftmaxHeadParams


@settings(max_examples=30, deadline=None)
@given(
    epochs=st.integers(1, 1000),
    batch_size=st.integers(1, 4096),
    optimizer=st.sampled_from(OPTIMIZERS),
    lr=st.floats(1e-6, 10.0),
    lr_schedule=st.sampled_from(LR_SCHEDULES),
    grad_clip=st.none() | st.floats(1e-4, 100.0),
    patience=st.none() | st.integers(1, 50),
)
def test_train_params_round_trip_through_json(**fields):
    params = TrainParams(**fields)
    assert TrainParams.from_dict(params.to_dict()) == params
    assert TrainParams.from_json(json.dumps(json.loads(params.to_json()))) == params


@settings(max_examples=20, deadline=None)
@given(
    hidden_sizes=st.lists(st.integers(1, 4096), max_size=4),
    dropout=st.floats(0.0, 0.99),
    activation=st.sampled_from(["relu", "gelu", "tanh"]),
)
def test_encoder_params_round_trip_and_lists_become_tuples(hidden_sizes, dropout, activation):
    params = EncoderParams.from_dict({"hidden_sizes": hidden_sizes, "dropout": dropout, "activation": activation})
    assert params.hidden_sizes == tuple(hidden_sizes)
    assert EncoderParams.from_json(params.to_json()) == params


def test_unknown_keys_and_wrong_types_name_the_field():
    with pytest.raises(ValueError, match=r"TrainParams: unknown key 'learning_rate'; allowed keys are: epochs, .*lr"):
        TrainParams.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="epochs must be an integer; got 'ten'"):
        TrainParams.from_dict({"epochs": "ten"})
    with pytest.raises(ValueError, match="epochs must be an integer"):
        TrainParams(epochs=2.5)
    with pytest.raises(ValueError, match="progress must be true or false"):
        TrainParams(progress=1)
    with pytest.raises(ValueError, match="hidden_sizes must be a list"):
        EncoderParams(hidden_sizes=64)
    with pytest.raises(ValueError, match=r"lr=0\.0 must be positive"):
        TrainParams(lr=0)
    with pytest.raises(ValueError, match="device='tpu'"):
        TrainParams(device="tpu")
    with pytest.raises(ValueError, match="unknown key 't'; allowed keys are: threshold"):
        SoftmaxHeadParams.from_dict({"t": 1.0})
    with pytest.raises(ValueError, match=r"threshold=1.0 must lie in \[0, 1\)"):
        SigmoidHeadParams.from_dict({"threshold": 1})


def test_integral_values_are_accepted_for_numbers():
    assert TrainParams(lr=1).lr == 1.0 and isinstance(TrainParams(lr=1).lr, float)
    assert TrainParams(epochs=3.0).epochs == 3
    threshold = SigmoidHeadParams.from_dict({"threshold": 0}).threshold
    assert threshold == 0.0 and isinstance(threshold, float)
