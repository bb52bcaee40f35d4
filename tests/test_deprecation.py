"""dclab 1's ``index_bits`` names still work, with a DeprecationWarning that names ``gap_bits``."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dclab.algorithms.quantize import quantize_layer
from dclab.cli import build_parser
from dclab.codec import container, sparse
from dclab.pipeline import CompressionConfig


def test_config_takes_the_old_keywords_and_stores_the_new_ones():
    with pytest.warns(DeprecationWarning, match="_index_bits' is now called '(conv|fc)_gap_bits'"):
        config = CompressionConfig(conv_index_bits=4, fc_index_bits=3)
    assert (config.conv_gap_bits, config.fc_gap_bits) == (4, 3)
    assert config == CompressionConfig(conv_gap_bits=4, fc_gap_bits=3)
    assert not any("index" in key for key in config.to_dict())  # the file's metadata uses the new names
    assert dataclasses.replace(config, fc_bits=4).fc_gap_bits == 3


def test_old_keyword_of_a_function_is_renamed_and_both_at_once_is_an_error():
    flat = np.array([0, 0, 3, 0, 0, 0, 0, 0, 0, 2])
    with pytest.warns(DeprecationWarning, match="'index_bits' is now called 'gap_bits'"):
        old = sparse.encode_gaps(flat, index_bits=2)
    new = sparse.encode_gaps(flat, gap_bits=2)
    assert np.array_equal(old.gaps, new.gaps) and np.array_equal(old.values, new.values)
    with pytest.raises(TypeError, match="give only 'gap_bits'"):
        sparse.encode_gaps(flat, index_bits=2, gap_bits=2)


def test_records_answer_to_the_old_field_name():
    w = torch.linspace(-1, 1, 64).reshape(8, 8)
    mask = w.abs() > 0.5
    layer = container.CompressedLayer.from_codebook("ip1", "fc", quantize_layer(w, mask, bits=3), bits=3, gap_bits=4)
    stats = container.from_bytes(container.to_bytes("lenet300", [layer])).layer_stats()[0]
    with pytest.warns(DeprecationWarning):
        assert layer.index_bits == layer.gap_bits == 4
    with pytest.warns(DeprecationWarning):
        assert stats.index_bits == stats.gap_bits == 4


@pytest.mark.parametrize("kind", ["conv", "fc"])
def test_cli_accepts_the_old_flag_for_the_new_one(kind, capsys):
    with pytest.warns(DeprecationWarning):
        args = build_parser().parse_args(["compress", "lenet300", f"--index-bits-{kind}", "6"])
    assert getattr(args, f"gap_bits_{kind}") == 6
    assert f"--index-bits-{kind} is now called --gap-bits-{kind}" in capsys.readouterr().err
    assert "--index-bits" not in build_parser().format_help()
