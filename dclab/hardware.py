"""Hardware 101: devices, a roofline measured on this machine, and the energy of arithmetic and memory.

Lecture: "Hardware 101" (devices, number representation); notebook 01.

- ``DEVICES``: CPU, GPU, FPGA, ASIC/TPU in one line each.
- ``measure_roofline()``: peak fp32 matrix-multiply FLOP/s and memory bandwidth of
  this machine, measured with torch in a few seconds and cached per process.
- ``layer_costs(model, batch_size)``: FLOPs, bytes moved and arithmetic intensity
  of each Linear/Conv2d layer, from the real modules through forward hooks.
- ``ENERGY_45NM_PJ`` (Horowitz, ISSCC 2014) and ``weight_fetch_energy(...)``: why a
  model that fits on chip wins.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from dclab.errors import DclabError

# ---------------------------------------------------------------- devices


class Device(NamedTuple):
    """A kind of processor, as the lecture contrasts them (notebook 01)."""

    name: str
    what: str
    strong_at: str
    weak_at: str


DEVICES: list[Device] = [
    Device(
        "CPU",
        "a few fast, general cores with large caches",
        "branchy code, low latency, any program",
        "throughput: each core works through a thread or two at a time, so a big matmul runs on few ALUs",
    ),
    Device(
        "GPU",
        "thousands of simple cores running the same instruction",
        "throughput on large, regular arithmetic (dense matmul, big batches)",
        "memory: the arithmetic outruns the DRAM that feeds it, so small batches and fc layers wait on memory",
    ),
    Device(
        "FPGA",
        "reconfigurable logic wired into a custom datapath",
        "any bit width per weight, streaming pipelines, low latency",
        "lower clock and harder to program than a CPU or GPU",
    ),
    Device(
        "ASIC / TPU",
        "a chip built for one job, e.g. the TPU's 256x256 array of 8-bit multiply-adds",
        "the most operations per joule, with large on-chip buffers",
        "flexibility: what was not designed in cannot be added, and a design takes years",
    ),
]


# ---------------------------------------------------------------- roofline


class Roofline(NamedTuple):
    """Measured peak compute and memory bandwidth of one device (notebook 01, the roofline)."""

    peak_flops: float  # fp32 FLOP/s of a large matrix multiply
    bandwidth: float  # bytes/s of a large copy (read + write counted)
    device: str
    threads: int

    @property
    def ridge(self) -> float:
        """Arithmetic intensity (FLOP/byte) where the memory roof meets the compute roof."""
        return self.peak_flops / self.bandwidth

    def attainable(self, intensity: float) -> float:
        """Upper bound on FLOP/s at ``intensity`` FLOP/byte: min(peak, bandwidth x intensity)."""
        return min(self.peak_flops, self.bandwidth * intensity)

    def bound(self, intensity: float) -> str:
        """``"memory"`` left of the ridge, ``"compute"`` right of it."""
        return "memory" if intensity < self.ridge else "compute"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn: Callable[[], object], device: torch.device, seconds: float, min_reps: int = 3) -> float:
    """The fastest of repeated runs of ``fn`` within about ``seconds`` (one warm-up first)."""
    fn()
    _sync(device)
    best, start, reps = math.inf, time.perf_counter(), 0
    while reps < min_reps or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return best


def measure_matmul_flops(n: int = 1024, seconds: float = 1.0, device: str = "cpu") -> float:
    """Peak fp32 FLOP/s of an ``n x n`` matrix multiply, best of repeats for ``seconds`` (notebook 01)."""
    if n < 16 or seconds <= 0:
        raise DclabError(f"measure_matmul_flops needs n >= 16 and seconds > 0; got n={n}, seconds={seconds}.")
    dev = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dev)
    b = torch.randn(n, n, generator=gen).to(dev)
    out = torch.empty(n, n, device=dev)
    with torch.no_grad():
        best = _best_seconds(lambda: torch.mm(a, b, out=out), dev, seconds)
    return 2.0 * n**3 / best


def measure_bandwidth(n_bytes: int = 128 * 2**20, seconds: float = 1.0, device: str = "cpu") -> float:
    """Memory bandwidth in bytes/s: a copy of ``n_bytes`` reads and writes 2 x n_bytes (notebook 01).

    ``n_bytes`` should be well beyond the last-level cache (default 128 MiB).
    """
    if n_bytes < 2**20 or seconds <= 0:
        raise DclabError(f"measure_bandwidth needs n_bytes >= 1 MiB and seconds > 0; got {n_bytes}, {seconds}.")
    dev = torch.device(device)
    src = torch.ones(n_bytes // 4, device=dev)
    dst = torch.empty_like(src)
    best = _best_seconds(lambda: dst.copy_(src), dev, seconds)
    return 2.0 * src.numel() * 4 / best


@functools.lru_cache(maxsize=None)
def _measure_roofline(device: str, threads: int, seconds: float) -> Roofline:
    flops = measure_matmul_flops(2048 if device.startswith("cuda") else 1024, seconds / 2, device)
    bandwidth = measure_bandwidth(512 * 2**20 if device.startswith("cuda") else 128 * 2**20, seconds / 2, device)
    return Roofline(flops, bandwidth, device, threads)


def measure_roofline(seconds: float = 2.0, device: str = "cpu") -> Roofline:
    """Peak matmul FLOP/s and memory bandwidth of this machine, measured once per process (notebook 01)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DclabError("no CUDA device here; measure the roofline with device='cpu'.")
    return _measure_roofline(device, torch.get_num_threads(), float(seconds))


# ---------------------------------------------------------------- per-layer cost


class LayerCost(NamedTuple):
    """The work and the traffic of one layer at one batch size (notebook 01, the roofline)."""

    name: str
    kind: str  # "conv" or "fc"
    batch_size: int
    flops: int  # 2 x multiply-adds
    weight_bytes: int  # weights + bias
    activation_bytes: int  # input + output
    bytes: int  # weight_bytes + activation_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: FLOPs per byte moved."""
        return self.flops / self.bytes


def layer_costs(
    model: nn.Module,
    batch_size: int = 1,
    input_shape: Sequence[int] = (1, 28, 28),
    bytes_per_value: int = 4,
) -> list[LayerCost]:
    """FLOPs and bytes of each Linear/Conv2d layer, in forward order, measured by hooks (notebook 01).

    Runs the model once on the ``meta`` device (shapes only, no arithmetic), so even
    a batch of thousands costs nothing. Bytes count weights, bias, input and output
    once each, at ``bytes_per_value`` bytes (4 for fp32): the least traffic a layer
    can have, which is what the roofline needs.
    """
    if batch_size < 1 or bytes_per_value <= 0:
        raise DclabError(f"layer_costs needs batch_size >= 1 and bytes_per_value > 0; got {batch_size}, {bytes_per_value}.")
    shadow = copy.deepcopy(model).to("meta")
    costs: list[LayerCost] = []

    def hook(name: str) -> Callable:
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            n_in, n_out = inputs[0].numel(), output.numel()
            params = sum(p.numel() for p in module.parameters(recurse=False))
            if isinstance(module, nn.Linear):
                kind, macs = "fc", n_out * module.in_features
            else:
                k = math.prod(module.kernel_size)
                kind, macs = "conv", n_out * (module.in_channels // module.groups) * k
            costs.append(
                LayerCost(
                    name,
                    kind,
                    batch_size,
                    2 * macs,
                    params * bytes_per_value,
                    (n_in + n_out) * bytes_per_value,
                    (params + n_in + n_out) * bytes_per_value,
                )
            )

        return record

    handles = [
        m.register_forward_hook(hook(name))
        for name, m in shadow.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d))
    ]
    try:
        with torch.no_grad():
            shadow(torch.empty(batch_size, *input_shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return costs


# ---------------------------------------------------------------- energy


# Energy per operation at 45 nm, 0.9 V: Horowitz, "Computing's energy problem",
# ISSCC 2014 (the table of the lecture). picojoules.
ENERGY_45NM_PJ: dict[str, float] = {
    "8-bit int add": 0.03,
    "32-bit int add": 0.1,
    "16-bit float add": 0.4,
    "32-bit float add": 0.9,
    "8-bit int mult": 0.2,
    "32-bit int mult": 3.1,
    "16-bit float mult": 1.1,
    "32-bit float mult": 3.7,
    "32-bit SRAM read (8 KB)": 5.0,
    "32-bit DRAM read": 640.0,
}
SRAM_READ_PJ = ENERGY_45NM_PJ["32-bit SRAM read (8 KB)"]
DRAM_READ_PJ = ENERGY_45NM_PJ["32-bit DRAM read"]


class WeightEnergy(NamedTuple):
    """The energy of reading every weight once, from DRAM or from on-chip SRAM (notebook 01)."""

    n_weights: int
    compression: float
    model_bytes: float  # n_weights x bits / 8 / compression
    fits_on_chip: bool  # model_bytes <= sram_bytes
    dram_pj: float  # all weights read from DRAM, 32 bits at a time
    sram_pj: float  # all weights read from on-chip SRAM
    pj: float  # what it costs: SRAM when the model fits, else DRAM


def weight_fetch_energy(n_weights: int, compression: float = 1.0, sram_bytes: float = 8e6, bits: int = 32) -> WeightEnergy:
    """Energy of fetching all weights once per inference, before/after compression (notebook 01).

    The model takes ``n_weights * bits / 8 / compression`` bytes, read in 32-bit
    words at 640 pJ each from DRAM or 5 pJ from SRAM (Horowitz's 8 KB SRAM; larger
    SRAMs cost somewhat more per read, still far below DRAM). A model that fits in
    ``sram_bytes`` of on-chip memory is read from SRAM.
    """
    for what, v in (("n_weights", n_weights), ("sram_bytes", sram_bytes), ("bits", bits)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise DclabError(f"weight_fetch_energy needs a finite {what} >= 0; got {v!r}.")
    if not (isinstance(compression, (int, float)) and math.isfinite(compression) and compression >= 1):
        raise DclabError(f"compression is a ratio >= 1 (40 means 40x smaller); got {compression!r}.")
    model_bytes = n_weights * bits / 8 / compression
    words = model_bytes * 8 / 32
    fits = model_bytes <= sram_bytes
    dram, sram = words * DRAM_READ_PJ, words * SRAM_READ_PJ
    return WeightEnergy(int(n_weights), float(compression), model_bytes, fits, dram, sram, sram if fits else dram)
