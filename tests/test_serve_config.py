"""voila.json, as `python -m dclab serve` uses it: every notebook opens from a preheated kernel (issue 13, part 3)."""
import json

from conftest import NOTEBOOKS, ROOT

from dclab.serve import CHECKOUT, voila_command


def config() -> dict:
    return json.loads((ROOT / "voila.json").read_text())


def test_every_notebook_gets_a_preheated_kernel():
    voila, pools = config()["VoilaConfiguration"], config()["VoilaKernelManager"]["kernel_pools_config"]
    assert voila["preheat_kernel"] is True
    # Voila 0.5 refuses to start with both: progressive rendering stays off while kernels are preheated
    assert not voila.get("progressive_rendering", False)
    default = pools["default"]["pool_size"]
    sizes = {p.name: pools.get(p.name, {}).get("pool_size", default) for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    assert sizes and all(size >= 1 for size in sizes.values()), sizes


def test_a_used_kernel_is_replaced_after_the_page_has_rendered():
    # the replacement runs its notebook again: on a 2-core machine it would slow the page just opened
    assert 1 <= config()["VoilaKernelManager"]["fill_delay"] <= 30


def test_voila_reads_this_voila_json():
    # Voila reads voila.json from its working directory: the launcher starts it in the checkout
    assert (CHECKOUT / "voila.json").is_file()
    command = voila_command(8866)
    assert command[2] == "voila" and command[3] == str(NOTEBOOKS)
