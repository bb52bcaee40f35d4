import pytest
import torch

from dclab import models
from dclab.errors import DclabError


def test_parameter_counts_match_the_papers():
    assert models.count_parameters(models.LeNet300()) == 266_610
    assert models.count_parameters(models.LeNet5()) == 431_080


@pytest.mark.parametrize("name,layers", [("lenet300", ["ip1", "ip2", "ip3"]), ("lenet5", ["conv1", "conv2", "ip1", "ip2"])])
def test_layers_in_forward_order(name, layers):
    model = models.build(name)
    assert list(models.compressible_layers(model)) == layers
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_layer_kinds():
    model = models.LeNet5()
    assert [models.layer_kind(m) for m in models.compressible_layers(model).values()] == ["conv", "conv", "fc", "fc"]
    with pytest.raises(DclabError):
        models.layer_kind(torch.nn.ReLU())


def test_unknown_model():
    with pytest.raises(DclabError, match="lenet300"):
        models.build("alexnet-9000")
