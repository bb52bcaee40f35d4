"""Bring your own network (issue 15): any nn.Linear/nn.Conv2d model compresses to a .dcz and loads back
into a module the user supplies; mismatched modules and unstorable layers are refused clearly."""
import pytest
import torch
from torch import nn

from dclab.codec import container
from dclab.data import Digits
from dclab.errors import DclabError
from dclab.models import LeNet300
from dclab.pipeline import CompressionConfig, arch_of, compress, compress_weights, layer_sparsities, load_model
from dclab.pipeline.config import FALLBACK_SPARSITY


class TinyNet(nn.Module):
    """conv -> relu -> linear (with biases), as named stages; ``width`` changes the conv's shape."""

    def __init__(self, width: int = 4, head: bool = True) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, width, 3, stride=2), nn.ReLU(), nn.Flatten())
        layers = [nn.Linear(width * 13 * 13, 16), nn.ReLU()] + ([nn.Linear(16, 10, bias=False)] if head else [])
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class WithBatchNorm(TinyNet):
    def __init__(self) -> None:
        super().__init__()
        self.features.insert(1, nn.BatchNorm2d(4))


class WithScale(TinyNet):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))


class WithConv1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)
        self.fc = nn.Linear(4, 2)


def seeded(cls=TinyNet, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return cls(**kwargs).eval()


def digits(n: int, seed: int) -> Digits:
    g = torch.Generator().manual_seed(seed)
    return Digits(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))


@pytest.fixture(scope="module")
def compressed():
    return compress_weights(seeded(), CompressionConfig(sparsity=0.5))


def test_a_custom_network_is_recorded_as_custom_not_as_a_zoo_name(compressed):
    _, data, report = compressed
    dcz = container.from_bytes(data)
    assert dcz.arch == report.arch == arch_of(TinyNet()) == "custom:TinyNet"
    assert [(layer.name, layer.shape) for layer in dcz.layers] == [
        ("features.0", (4, 1, 3, 3)), ("classifier.0", (16, 676)), ("classifier.2", (10, 16))]


def test_it_loads_back_into_a_fresh_instance_bit_for_bit(compressed, tmp_path):
    net, data, _ = compressed
    path = tmp_path / "tiny.dcz"
    path.write_bytes(data)
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    for source in (data, path):
        fresh = TinyNet().train()
        loaded = load_model(source, into=fresh)
        assert loaded is fresh and not loaded.training
        state = loaded.state_dict()
        assert list(state) == list(net.state_dict())
        for key, value in net.state_dict().items():
            assert torch.equal(state[key], value), key
        with torch.no_grad():
            assert torch.equal(loaded(x), net(x))


def test_a_custom_network_gets_the_per_kind_defaults(compressed):
    model, config = seeded(), CompressionConfig()
    assert layer_sparsities(model, arch_of(model), config) == {
        "features.0": FALLBACK_SPARSITY["conv"], "classifier.0": FALLBACK_SPARSITY["fc"],
        "classifier.2": FALLBACK_SPARSITY["fc"]}
    _, _, report = compress_weights(model, config)
    bits = {layer.name: (layer.bits, layer.gap_bits) for layer in report.layers}
    assert bits["features.0"] == (config.conv_bits, config.conv_gap_bits)
    assert bits["classifier.0"] == (config.fc_bits, config.fc_gap_bits)


def test_without_into_a_custom_file_asks_for_the_architecture(compressed):
    with pytest.raises(DclabError, match=r"network of your own \('TinyNet'\).*into=TinyNet\(\)"):
        load_model(compressed[1])


@pytest.mark.parametrize("other, problem", [
    (dict(width=8), r"shapes differ: features\.0\.weight \(file \(4, 1, 3, 3\), model \(8, 1, 3, 3\)\)"),
    (dict(head=False), r"in the file, not in the model: classifier\.2\.weight \(10, 16\)"),
])
def test_a_mismatched_module_is_refused_naming_what_differs(compressed, other, problem):
    target = seeded(**other)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(DclabError, match=problem) as err:
        load_model(compressed[1], into=target)
    assert "the network it was compressed from" in str(err.value)
    for key, value in target.state_dict().items():
        assert torch.equal(value, before[key]), key  # nothing half-loaded


def test_a_module_with_more_state_is_refused(compressed):
    with pytest.raises(DclabError, match=r"in the model, not in the file: scale \(1,\)"):
        load_model(compressed[1], into=WithScale())


def test_a_zoo_model_still_round_trips():
    _, data, report = compress_weights(seeded(LeNet300), CompressionConfig(sparsity=0.8))
    assert report.arch == container.from_bytes(data).arch == "lenet300"
    rebuilt = load_model(data)
    into = load_model(data, into=LeNet300())
    assert isinstance(rebuilt, LeNet300)
    for key, value in rebuilt.state_dict().items():
        assert torch.equal(into.state_dict()[key], value), key
    with pytest.raises(DclabError, match="does not fit a TinyNet"):
        load_model(data, into=TinyNet())


@pytest.mark.parametrize("cls, named", [
    (WithBatchNorm, r"BatchNorm2d: features\.1\.weight, features\.1\.bias, features\.1\.running_mean, .*fold_batchnorm"),
    (WithScale, r"WithScale: scale"),
    (WithConv1d, r"Conv1d: conv\.weight, conv\.bias"),
])
def test_unstorable_layers_are_refused_before_any_work(cls, named):
    with pytest.raises(DclabError, match=r"only the weights and biases of nn\.Linear and nn\.Conv2d.*" + named):
        compress_weights(seeded(cls))
    with pytest.raises(DclabError, match="only the weights and biases"):
        compress(seeded(cls))  # refused before it loads MNIST or trains


def test_other_unstorable_models_are_refused():
    with pytest.raises(DclabError, match="convert the model with .float"):
        compress_weights(seeded().double())
    with pytest.raises(DclabError, match=r"wrap it \(nn\.Sequential"):
        compress_weights(nn.Linear(4, 2))
    with pytest.raises(DclabError, match="no nn.Linear or nn.Conv2d"):
        compress_weights(nn.Sequential(nn.ReLU()))


def test_compress_trains_a_custom_network_into_a_file_that_loads_back():
    config = CompressionConfig(sparsity=0.5, prune_steps=1, retrain_epochs=1, finetune_epochs=1, batch_size=64)
    result = compress(seeded(), config, train_data=digits(128, 2), test_data=digits(64, 3), progress=False)
    assert result.report.arch == "custom:TinyNet"
    loaded = load_model(result.dcz, into=TinyNet())
    for key, value in result.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_the_recorded_class_name_is_only_a_label():
    layer = container.CompressedLayer("fc", "fc", (2, 3), 2, 0, [0.0, 1.0], torch.zeros(6, dtype=torch.int64))
    data = container.to_bytes("custom:__import__('os').system('false')", [layer])
    with pytest.raises(DclabError, match="network of your own"):
        load_model(data)
    target = nn.Module()
    target.fc = nn.Linear(3, 2, bias=False)
    assert torch.equal(load_model(data, into=target).fc.weight, torch.zeros(2, 3))
