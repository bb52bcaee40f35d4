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


def test_a_page_waits_for_its_outputs_under_load():
    """Voila's executor (nbclient) waits ``iopub_timeout`` seconds for a cell's outputs after the kernel's reply,
    then drops what has not come: at nbclient's 4 s a loaded server lost dashboards' figures (classroom
    benchmark, 10 readers: 'Timeout waiting for IOPub output' once per page never drawn). The setting must reach
    the executor Voila builds from this config, for a page's kernel and for a preheated one alike."""
    import nbformat
    from traitlets.config import Config
    from voila.execute import VoilaExecutor

    executor = VoilaExecutor(nbformat.v4.new_notebook(), config=Config(config()))
    assert executor.iopub_timeout == config()["VoilaExecutor"]["iopub_timeout"] >= 60


def test_voila_reads_this_voila_json():
    # Voila reads voila.json from its working directory: the launcher starts it in the checkout
    assert (CHECKOUT / "voila.json").is_file()
    command = voila_command(8866)
    assert command[2] == "voila" and command[3] == str(NOTEBOOKS)


def test_a_preheated_kernel_that_waited_past_the_cull_timeout_lives_after_its_hand_out(tmp_path):
    """A real Voila server, culling after 8 s idle, checked every second; one tiny notebook. Its preheated
    kernel waits past the timeout, then a page is requested and the browser never connects: Voila's own
    culler counted the wait as idle time and culled the kernel at the next check (the page never came
    alive); ours starts the idle clock at the hand-out, so it lives for a timeout, then is culled."""
    import re
    import time
    import urllib.request

    import nbformat

    from dclab.serve import start_voila, stop

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('ready')")]), tmp_path / "tiny.ipynb")
    log_path = tmp_path / "voila.log"
    timeout = 8
    with open(log_path, "wb") as log:
        proc, base = start_voila(log, notebooks=tmp_path, extra_args=[
            f"--MappingKernelManager.cull_idle_timeout={timeout}", "--MappingKernelManager.cull_interval=1"])
    try:
        deadline = time.monotonic() + 90
        while "Kernel started" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(timeout + 4)  # the preheated kernel has run its notebook and waited past the timeout
        html = urllib.request.urlopen(base + "/voila/render/tiny.ipynb", timeout=60).read().decode()
        handed_out = time.monotonic()
        kernel = re.search(r"Using pre-heated kernel: ([\w-]+)", log_path.read_text())
        assert kernel and kernel.group(1) in html, "the page was not served from the preheated pool"
        culled = f"({kernel.group(1)})"
        time.sleep(3)  # three cull checks after the hand-out
        assert culled not in log_path.read_text(), "the kernel handed out was culled before its browser connected"
        while culled not in log_path.read_text() and time.monotonic() - handed_out < timeout + 30:
            time.sleep(0.5)
        assert culled in log_path.read_text(), "a page never connected to must still be culled after the timeout"
    finally:
        stop(proc)
