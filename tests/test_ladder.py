"""The retrained ladder behind the live pages (dclab.pipeline.ladder) and the capstone answering on it."""
from __future__ import annotations

import pytest
import torch

from dclab import paper
from dclab.errors import DclabError
from dclab.models import LeNet300, compressible_layers
from dclab.pipeline import CompressionConfig, compress_weights, load_model
from dclab.pipeline.ladder import LEVELS, Ladder, Rung, retrained_ladder, rung_sparsities
from dclab.pipeline.session import CompressionSession
from dclab.train import evaluate


@pytest.mark.parametrize("arch", sorted(LEVELS))
def test_rungs_follow_the_papers_profile_and_only_ever_prune_more(arch):
    at_paper = rung_sparsities(arch, 0.92)
    assert at_paper == pytest.approx(paper.SPARSITY[arch], abs=1e-4)  # the papers' rates, exactly
    previous = None
    for level in LEVELS[arch]:
        s = rung_sparsities(arch, level)
        assert max(s.values()) == pytest.approx(level)
        if previous is not None:
            assert all(s[n] >= previous[n] for n in s)
        previous = s
    with pytest.raises(DclabError, match=r"sparsity in \[0, 1\)"):
        rung_sparsities(arch, 1.0)
    with pytest.raises(DclabError, match="ladders exist for"):
        rung_sparsities("alexnet", 0.5)


def _ladder(zeros_per_rung: list[dict[str, int]]) -> Ladder:
    """A ladder of LeNet-300-100s whose rung i has ``zeros_per_rung[i]`` weights set to 0 in each layer."""
    torch.manual_seed(0)
    base = LeNet300()
    rungs = []
    for index, zeros in enumerate(zeros_per_rung):
        state = {k: v.clone() for k, v in base.state_dict().items()}
        sparsities = {}
        for name, module in compressible_layers(base).items():
            w = state[f"{name}.weight"].view(-1)
            w[: zeros.get(name, 0)] = 0.0
            sparsities[name] = zeros.get(name, 0) / w.numel()
        rungs.append(Rung(index, max(sparsities.values()), sparsities, state, None, 0.0))
    return Ladder("lenet300", rungs)


def test_a_setting_uses_the_most_pruned_rung_that_prunes_no_layer_more_than_it():
    n1, n2 = 235200, 30000  # ip1 and ip2 weights (ip3 has 1,000)
    ladder = _ladder([{}, {"ip1": n1 // 2, "ip2": n2 // 2}, {"ip1": 9 * n1 // 10, "ip2": 9 * n2 // 10, "ip3": 500}])
    assert ladder.rung_for({"ip1": 0.95, "ip2": 0.95, "ip3": 0.6}).index == 2
    assert ladder.rung_for({"ip1": 0.95, "ip2": 0.95, "ip3": 0.4}).index == 1  # ip3 would be pruned too far
    assert ladder.rung_for({"ip1": 0.5, "ip2": 0.5, "ip3": 0.0}).index == 1  # equal counts qualify
    assert ladder.rung_for({"ip1": 0.49, "ip2": 0.99, "ip3": 0.99}).index == 0  # the baseline always does
    assert ladder.rungs[0].describe().startswith("the dense baseline")


@pytest.fixture(scope="module")
def ladder300():
    return retrained_ladder("lenet300", progress=False)  # cached by `prepare`


def test_every_rung_keeps_the_zeros_of_the_rung_below_at_its_own_sparsity(ladder300):
    below = None
    for rung in ladder300.rungs[1:]:
        assert rung.sparsities == pytest.approx(rung_sparsities("lenet300", rung.level), abs=1e-4)
        for name, s in rung.sparsities.items():
            w = rung.state[f"{name}.weight"]
            assert int((w == 0).sum()) == round(s * w.numel())
            if below is not None:
                assert torch.all(w[below.state[f"{name}.weight"] == 0] == 0)  # pruned weights stay pruned
        assert 0.1 < rung.accuracy <= 1.0
        below = rung


def test_a_second_ladder_is_read_from_the_cache_without_training(ladder300, monkeypatch):
    import dclab.pipeline.ladder as ladder_module

    monkeypatch.setattr(ladder_module, "retrain_pruned", lambda *a, **k: pytest.fail("retrained again"))
    again = retrained_ladder("lenet300", progress=False)
    for a, b in zip(again.rungs, ladder300.rungs, strict=True):
        assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)


@pytest.fixture(scope="module")
def session(mnist_test):
    return CompressionSession(mnist_test)  # the zoo's baselines, with their ladders


def test_the_capstone_answers_on_the_rung_with_the_engines_bytes(session, ladder300, mnist_test):
    config = CompressionConfig(sparsity={"ip1": 0.96, "ip2": 0.95, "ip3": 0.8}, fc_bits=4)
    snap = session.compress("lenet300", config, retrained=True)
    rung = ladder300.rung_for(snap.sparsities)
    assert snap.rung == rung.index > 0 and snap.retrained and snap.rung_label == rung.describe()
    _, engine, _ = compress_weights(rung.model("lenet300"), config)
    assert snap.dcz == engine  # the one engine, on the rung's weights
    assert snap.accuracy == evaluate(load_model(snap.dcz), mnist_test)
    plain = session.compress("lenet300", config)
    assert plain.rung == 0 and not plain.retrained
    assert snap.baseline_accuracy == plain.baseline_accuracy  # "vs baseline" is always the dense baseline


def test_retraining_buys_accuracy_at_the_papers_rates(session):
    config = CompressionConfig(sparsity=dict(paper.SPARSITY["lenet300"]))
    retrained = session.compress("lenet300", config, retrained=True)
    plain = session.compress("lenet300", config)
    assert retrained.rung_label.startswith("ip1 92%")  # the rung at the papers' rates
    assert retrained.accuracy > plain.accuracy  # what the method is for
    tuned = session.finetune(retrained, 1, train_data=session.train_data.subset(512))
    assert tuned.rung == retrained.rung  # fine-tuning stays on the rung's weights


def test_a_given_model_has_the_ladder_only_if_it_is_the_baseline_it_grew_from(lenet300, ladder300, mnist_test):
    from dclab.pipeline.ladder import ladder_for

    assert ladder300.grown_from(lenet300) and ladder_for(lenet300) is not None
    given = CompressionSession(mnist_test, {"lenet300": lenet300})  # the zoo's baseline, its ladder cached
    assert given.has_ladder("lenet300")
    assert given.compress("lenet300", CompressionConfig(sparsity=0.9), evaluate=False, retrained=True).rung > 0

    other = LeNet300()
    other.load_state_dict(lenet300.state_dict())
    with torch.no_grad():
        other.ip3.bias.add_(1e-3)  # another network, however close
    assert not ladder300.grown_from(other) and ladder_for(other) is None
    session = CompressionSession(mnist_test, {"lenet300": other})
    assert not session.has_ladder("lenet300")
    with pytest.raises(DclabError, match="no retrained ladder"):
        session.compress("lenet300", CompressionConfig(sparsity=0.5), retrained=True)
    with pytest.raises(DclabError, match="not the zoo's baseline"):
        CompressionSession(mnist_test, {"lenet300": other}, ladders=True).ladder("lenet300")
    with pytest.raises(DclabError, match="not the zoo's baseline"):
        ladder_for(other, True)
    assert ladder_for(lenet300, False) is None
    assert not CompressionSession(mnist_test, ladders=False).has_ladder("lenet300")


def test_table_1_interpreted_finds_the_largest_ratio_without_loss(ladder300):
    from dclab.lessons import coding as coding_lesson

    result = coding_lesson.ladder_tradeoff("lenet300", progress=False)
    rows = result["rows"]
    assert [r["rung"] for r in rows] == [r.index for r in ladder300.rungs]
    assert rows[-1]["ratio"] > rows[0]["ratio"]  # the most pruned rung makes the smallest file
    limit = result["baseline"] - coding_lesson.NO_LOSS_POINTS / 100
    best = result["no_loss"]
    assert best["accuracy"] >= limit - 1e-9
    assert all(r["ratio"] <= best["ratio"] for r in rows if r["accuracy"] >= limit - 1e-9)
    assert result["at_paper"]["level"] == 0.92
    sentence = coding_lesson.no_loss_sentence(result)
    assert f"{best['ratio']:.1f}x" in sentence and f"{result['at_paper']['accuracy']:.2%}" in sentence
