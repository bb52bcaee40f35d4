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


def test_lenet5_computes_its_convolutions_channels_last_with_ordinary_weights():
    """The layout is a speed choice inside the forward pass only: the weights a reader handles are laid out
    as usual (``ones_like(w).view(-1)`` works), the convolutions' outputs are channels-last, and the forward
    pass equals the same layers computed in the default layout."""
    torch.manual_seed(0)
    net = models.build("lenet5").eval()
    plain = {k: v.clone() for k, v in net.state_dict().items()}
    for name in ("conv1", "conv2"):
        weight = getattr(net, name).weight
        assert weight.is_contiguous() and torch.ones_like(weight).view(-1).numel() == weight.numel()
    x = torch.randn(16, 1, 28, 28)
    F = torch.nn.functional
    with torch.no_grad():
        assert net.conv2(torch.randn(4, 20, 12, 12)).is_contiguous(memory_format=torch.channels_last)
        h = F.max_pool2d(F.conv2d(x, plain["conv1.weight"], plain["conv1.bias"]), 2)
        h = F.max_pool2d(F.conv2d(h, plain["conv2.weight"], plain["conv2.bias"]), 2)
        h = torch.relu(F.linear(h.flatten(1), plain["ip1.weight"], plain["ip1.bias"]))
        expected = F.linear(h, plain["ip2.weight"], plain["ip2.bias"])
        assert torch.allclose(net(x), expected, atol=1e-5)
