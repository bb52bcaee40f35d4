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


def test_lenet5_keeps_its_convolutions_channels_last_and_computes_the_same_function():
    """The layout is a speed choice only: weights loaded from a plain (contiguous) state dict keep it,
    and the forward pass equals the same convolutions computed in the default layout."""
    torch.manual_seed(0)
    plain = {k: v.contiguous() for k, v in models.build("lenet5").state_dict().items()}
    net = models.build("lenet5").eval()
    net.load_state_dict(plain)
    for name in ("conv1", "conv2"):
        assert getattr(net, name).weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(16, 1, 28, 28)
    pool = torch.nn.functional.max_pool2d
    with torch.no_grad():
        h = pool(torch.nn.functional.conv2d(x, plain["conv1.weight"], plain["conv1.bias"]), 2)
        h = pool(torch.nn.functional.conv2d(h, plain["conv2.weight"], plain["conv2.bias"]), 2)
        h = torch.relu(torch.nn.functional.linear(h.flatten(1), plain["ip1.weight"], plain["ip1.bias"]))
        expected = torch.nn.functional.linear(h, plain["ip2.weight"], plain["ip2.bias"])
        assert torch.allclose(net(x), expected, atol=1e-5)
