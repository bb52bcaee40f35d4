"""Hardware 101: devices, a roofline measured on this machine, and the energy of arithmetic and memory.

Lecture: "Hardware 101" (devices, number representation); notebook 01.

- ``DEVICES``: CPU, GPU, FPGA, ASIC/TPU in one line each.
- ``measure_roofline()``: peak fp32 matrix-multiply FLOP/s and memory bandwidth of
  this machine, measured with torch in a few seconds and cached per process.
- ``layer_costs(model, batch_size)``: FLOPs, bytes moved and arithmetic intensity
  of each Linear/Conv2d layer, from the real modules through forward hooks.
- ``ENERGY_45NM_PJ`` (Horowitz, ISSCC 2014) and ``weight_fetch_energy(...)``: why a
  model that fits on chip wins.
- ``time_sparse_matvec(densities, batch_size)``: a pruned layer's product, dense against
  ``torch.sparse`` CSR, timed on this machine ("Does it run faster?").
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import time
import warnings
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from dclab.algorithms.prune import magnitude_mask
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


def measure_roofline(seconds: float = 2.0, device: str = "cpu", refresh: bool = False) -> Roofline:
    """Peak matmul FLOP/s and memory bandwidth of this machine, measured once per process (notebook 01).

    ``refresh`` measures again (and keeps the new measurement for the rest of the process).
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DclabError("no CUDA device here; measure the roofline with device='cpu'.")
    if refresh:
        _measure_roofline.cache_clear()
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

    Runs a copy of the model (in eval mode) once on a single zero image and scales by
    ``batch_size``: a Linear or Conv2d layer's inputs, outputs and multiply-adds grow
    exactly with the batch, so even a batch of thousands costs one image's forward.
    (Not on the ``meta`` device: its first use imports ``torch._dynamo``, ~75 MB of a
    kernel's memory.) Bytes count weights, bias, input and output once each, at
    ``bytes_per_value`` bytes (4 for fp32): the least traffic a layer can have, which
    is what the roofline needs.
    """
    if batch_size < 1 or bytes_per_value <= 0:
        raise DclabError(f"layer_costs needs batch_size >= 1 and bytes_per_value > 0; got {batch_size}, {bytes_per_value}.")
    shadow = copy.deepcopy(model).eval()
    costs: list[LayerCost] = []

    def hook(name: str) -> Callable:
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            n_in, n_out = inputs[0].numel() * batch_size, output.numel() * batch_size
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
            device = next((p.device for p in shadow.parameters()), torch.device("cpu"))
            shadow(torch.zeros(1, *input_shape, device=device))
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


# ---------------------------------------------------------------- does a pruned layer run faster?

DENSITIES: tuple[float, ...] = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02)
"""The densities notebook 01 times: from dense to Deep Compression's 8% for LeNet-300-100's ip1 and beyond."""

IP1_SHAPE: tuple[int, int] = (300, 784)
"""LeNet-300-100's ip1 weight, (out_features, in_features)."""


class SparseTiming(NamedTuple):
    """One pruned layer's product ``W @ X``, dense and ``torch.sparse`` CSR, timed (notebook 01, "Does it run faster?").

    Times are seconds per product, the fastest of repeated runs. Bytes count the weights only,
    as a kernel must read them: dense fp32 is 4 bytes per weight, zeros included; CSR is 4 bytes
    of value + 4 of column index (int32) per kept weight, + 4 per row pointer.
    """

    density: float  # the fraction of weights kept that was asked for
    kept: int  # weights kept (non-zeros of the CSR matrix)
    shape: tuple[int, int]  # (out_features, in_features)
    batch_size: int  # columns of X; 1 = a matrix-vector product
    dense_s: float
    sparse_s: float
    agree: bool  # the CSR product equals the dense one (float32 rounding apart)
    max_error: float  # largest |sparse - dense| over the output
    dense_bytes: int
    sparse_bytes: int
    threads: int  # torch threads used for the timing

    @property
    def speedup(self) -> float:
        """dense time / sparse time: above 1, the sparse product is faster."""
        return self.dense_s / self.sparse_s

    @property
    def bytes_ratio(self) -> float:
        """dense bytes / CSR bytes: how much less weight traffic CSR needs."""
        return self.dense_bytes / self.sparse_bytes


def check_density(density: float) -> float:
    """``density`` as a float in (0, 1], or a DclabError that says what to give."""
    if isinstance(density, bool) or not isinstance(density, numbers.Real) or not 0.0 < float(density) <= 1.0:
        raise DclabError(
            f"density must be a number in (0, 1] (the fraction of weights kept), not {density!r}; "
            "e.g. 0.1 keeps 10% of the weights, 1.0 keeps them all"
        )
    return float(density)


def check_batch_size(batch_size: int) -> int:
    """``batch_size`` as an int >= 1, or a DclabError that says what to give."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise DclabError(f"batch_size must be a whole number >= 1 (inputs per product), not {batch_size!r}")
    return int(batch_size)


def pruned_to_density(w: torch.Tensor, density: float) -> torch.Tensor:
    """A copy of ``w`` with all but the ``round(density * numel)`` largest-|w| weights set to 0 (notebook 01)."""
    mask = magnitude_mask(w, 1.0 - check_density(density))
    return torch.where(mask, w.detach(), torch.zeros((), dtype=w.dtype))


def to_csr(w: torch.Tensor) -> torch.Tensor:
    """``w``'s non-zeros as a ``torch.sparse_csr`` matrix with int32 indices (4 bytes each, as a kernel reads them)."""
    if w.dim() != 2:
        raise DclabError(f"to_csr needs a 2-D weight matrix (out x in); got shape {tuple(w.shape)}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        csr = w.detach().to_sparse_csr()
        return torch.sparse_csr_tensor(csr.crow_indices().to(torch.int32), csr.col_indices().to(torch.int32),
                                       csr.values(), csr.shape, check_invariants=True)


def _per_call_seconds(fns: Sequence[Callable[[], object]], seconds: float, min_reps: int = 3) -> list[float]:
    """Fastest time per call of each of ``fns``: loops of calls, interleaved, repeated for ``seconds`` in all.

    Each loop runs enough calls to last about a millisecond (so the clock's resolution does
    not matter); the minimum over loops is the run least disturbed by other work.
    """
    loops = []
    for fn in fns:
        fn()  # warm-up: allocations, first-touch, library dispatch
        t0 = time.perf_counter()
        fn()
        once = max(time.perf_counter() - t0, 1e-7)
        loops.append(max(1, min(10_000, int(1e-3 / once))))
    best = [math.inf] * len(fns)
    start, reps = time.perf_counter(), 0
    while reps < min_reps or time.perf_counter() - start < seconds:
        for i, (fn, n) in enumerate(zip(fns, loops)):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t0) / n)
        reps += 1
    return best


def time_sparse_matvec(
    densities: Sequence[float] = DENSITIES,
    batch_size: int = 1,
    w: torch.Tensor | None = None,
    seconds: float = 0.25,
    threads: int = 1,
    seed: int = 0,
) -> list[SparseTiming]:
    """Time ``W @ X`` for ``W`` pruned to each density, dense (zeros stored) and CSR (notebook 01, "Does it run faster?").

    ``w`` defaults to random normal weights of LeNet-300-100's ip1 shape, 300 x 784 (the
    time depends on the shape and on where the kept weights are, not on their values);
    pruning keeps the largest |w|. ``X`` is ``in_features x batch_size`` (a vector at
    batch 1: ``torch.mv``). Timer: the minimum over interleaved repeats (dense, sparse,
    dense, ...) of loops of calls, for about ``seconds`` per density, on ``threads`` torch
    threads (restored afterwards). The caller states the result; this measures only.
    """
    batch_size = check_batch_size(batch_size)
    densities = [check_density(d) for d in densities]
    if not densities:
        raise DclabError("time_sparse_matvec needs at least one density in (0, 1], e.g. densities=(1.0, 0.1)")
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise DclabError(f"threads must be a whole number >= 1, not {threads!r}")
    if not (isinstance(seconds, numbers.Real) and math.isfinite(seconds) and seconds >= 0):
        raise DclabError(f"seconds must be a finite number >= 0 (time budget per density), not {seconds!r}")
    gen = torch.Generator().manual_seed(seed)
    if w is None:
        w = torch.randn(*IP1_SHAPE, generator=gen)
    if w.dim() != 2:
        raise DclabError(f"w must be a 2-D weight matrix (out x in), e.g. model.ip1.weight; got shape {tuple(w.shape)}")
    w = w.detach().to("cpu", torch.float32)
    rows, cols = w.shape
    x = torch.randn(cols, batch_size, generator=gen)
    if batch_size == 1:
        x = x[:, 0].contiguous()
    product = torch.mv if batch_size == 1 else torch.mm
    previous = torch.get_num_threads()
    records = []
    try:
        torch.set_num_threads(int(threads))
        with torch.no_grad():
            for density in densities:
                dense = pruned_to_density(w, density)
                csr = to_csr(dense)
                y_dense, y_sparse = product(dense, x), product(csr, x)
                scale = float(product(dense.abs(), x.abs()).max()) or 1.0
                error = float((y_sparse - y_dense).abs().max())
                dense_s, sparse_s = _per_call_seconds(
                    [lambda: product(dense, x), lambda: product(csr, x)], seconds
                )
                kept = int(csr.values().numel())
                records.append(SparseTiming(
                    density, kept, (rows, cols), batch_size, dense_s, sparse_s,
                    bool(y_sparse.shape == y_dense.shape and error <= 1e-5 * scale), error,
                    4 * rows * cols, 8 * kept + 4 * (rows + 1), int(threads),
                ))
    finally:
        torch.set_num_threads(previous)
    return records


def sparse_wins_below(records: Sequence[SparseTiming]) -> float | None:
    """The largest measured density from which the sparse product is faster at every lower density, or None.

    None: sparse is not faster even at the lowest density measured (notebook 01).
    """
    wins = None
    for r in sorted(records, key=lambda r: r.density):
        if r.sparse_s >= r.dense_s:
            break
        wins = r.density
    return wins


def csr_break_even_density(shape: tuple[int, int]) -> float:
    """The density below which CSR (4-byte value + 4-byte column index per weight, 4 per row pointer) reads fewer
    weight bytes than dense fp32 (4 per weight): about 1/2 (notebook 01)."""
    rows, cols = shape
    return (4 * rows * cols - 4 * (rows + 1)) / (8 * rows * cols)


def describe_sparse_timings(records: Sequence[SparseTiming]) -> str:
    """What a ``time_sparse_matvec`` run measured, in words built from its numbers (notebook 01)."""
    if not records:
        raise DclabError("describe_sparse_timings needs the records of time_sparse_matvec, not an empty list")
    by_density = sorted(records, key=lambda r: r.density)
    lowest, highest = by_density[0], by_density[-1]
    first = records[0]
    head = f"batch {first.batch_size} ({first.threads} thread{'s' if first.threads > 1 else ''}): "
    wins = sparse_wins_below(records)
    if wins is None:
        verdict = (f"CSR is never faster here; even at {lowest.density:.0%} density it takes "
                   f"{1 / lowest.speedup:.2f}x the dense time")
    else:
        at = next(r for r in by_density if r.density == wins)
        verdict = (f"CSR is faster from {wins:.0%} density down ({at.speedup:.2f}x at {wins:.0%}, "
                   f"{lowest.speedup:.2f}x at {lowest.density:.0%})")
    if wins != highest.density:
        verdict += f"; at {highest.density:.0%} it takes {1 / highest.speedup:.1f}x the dense time"
    bad = [r.density for r in records if not r.agree]
    verdict += ("; sparse and dense results agree at every density" if not bad
                else f"; sparse and dense results DISAGREE at densities {bad}")
    return head + verdict + "."


def describe_weight_traffic(timing: SparseTiming, roofline: Roofline) -> str:
    """The dense product's effective weight bandwidth beside the measured DRAM bandwidth, in words (notebook 01).

    Faster than DRAM means the layer stayed in the caches between the timer's repeats.
    """
    rate = timing.dense_bytes / timing.dense_s
    head = (f"Dense {timing.shape[0]} x {timing.shape[1]} at batch {timing.batch_size}, density {timing.density:.0%}: "
            f"{timing.dense_bytes / 1e6:.2f} MB of weights in {timing.dense_s * 1e6:.0f} µs, "
            f"{rate / 1e9:.1f} GB/s on {timing.threads} thread{'s' if timing.threads > 1 else ''}, ")
    if rate > roofline.bandwidth:
        return head + (f"more than the {roofline.bandwidth / 1e9:.1f} GB/s DRAM bandwidth of the roofline: between "
                       "repeats the layer stays in the CPU's caches, so these times are for weights already on chip.")
    return head + (f"no more than the {roofline.bandwidth / 1e9:.1f} GB/s DRAM bandwidth of the roofline: "
                   "the product waits on memory.")
