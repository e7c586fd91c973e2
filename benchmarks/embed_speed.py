"""Histology embedding throughput, stage by stage: patch reading, each encoder's network, and embed_patches end to end.

For each encoder: GFLOP per patch (counted by ``torch.utils.flop_counter`` on one patch: convolutions and matrix
products), patches/s and achieved GFLOP/s of the network alone (a batch already in memory, warm), beside the device's
measured matmul peak in the network's dtype (the CPU: float32; a GPU: 8192² products), and patches/s of the whole
encoder on the uint8 batch (with its resizing and normalisation, on the threads it asks for: colour/texture runs on
one); each the best of at least 3 calls and 2 s. Then patch reading alone (``iter_patches``, each image chunk decoded
once) and ``genar.pp.embed_patches`` end to end (reading overlapped with encoding; the better of two calls, each
building its encoder), with the patches/s of its encoder counted over the time spent inside it (on a GPU, until its
kernels finish), the seconds spent building the encoder, and the patches/s without them (a foundation ViT's random
initialisation takes seconds, once per call, which a few hundred patches do not amortise). Python's garbage is collected
before each timed pass. Patches are the spots of her2st sections C4 and C3 (``--sections``; lazily read from the image
pyramids, as in use) when the data is found, else ``--n-patches`` spots of a synthetic slide. UNI (ViT-L/16) and
H-optimus-0 (ViT-g/14) run with random weights (their speed does not depend on the weights, which cannot be fetched
here). On a CUDA GPU, ``--precision auto`` (the default, as in ``embed_patches``) runs each network in its own reduced
precision (``genar.encoders.available()``: gpu_dtype), network-alone timings included; ``--precision 32`` runs float32.
On the CPU both run float32.

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/embed_speed.py [--encoders default color_texture
      efficientnet_lite0_mid uni_arch] [--sections C4 C3] [--n-patches 256] [--batch-size 64] [--device cpu]
      [--precision auto]
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
import torch

import genar
from genar.encoders import EncoderSpec, get_spec, register
from genar.encoders._base import use_reduced_precision
from genar.encoders._foundation import VIT_ARGS
from genar.encoders._vit import VisionTransformer

ARCHITECTURES = {"uni_arch": "uni", "h_optimus_0_arch": "h_optimus_0"}


def patches_sdata(n: int, sections: list[str]):
    """A SpatialData with patches: the spots of her2st ``sections`` when available, else ``n`` of a synthetic slide."""
    try:
        sdata = genar.datasets.her2st(sections=sections)  # C4 and C3: 364 spots; all four: 834
    except (FileNotFoundError, RuntimeError, OSError):
        from spatialdata import SpatialData
        from spatialdata.models import Image2DModel

        rng = np.random.default_rng(0)
        image = Image2DModel.parse(rng.integers(0, 255, (3, 4096, 4096), dtype=np.uint8), dims=("c", "y", "x"))
        sdata = SpatialData(images={"slide": image})
        genar.pp.make_spots(sdata, "slide", pixel_size_um=1.0, tissue_mask=np.ones((8, 8), bool))
        table = sdata.tables["genar"]
        sdata.tables["genar"] = table[: min(n, table.n_obs)].copy()
        genar.pp.extract_patches(sdata)
        return sdata
    genar.pp.select_genes(sdata, 10)
    genar.pp.extract_patches(sdata)
    return sdata


def best_seconds(run, device: str, repeats: int = 3, min_seconds: float = 2.0) -> float:
    """Shortest timed call of ``run`` after one warm-up call.

    At least ``repeats`` calls, and more (up to 30) until ``min_seconds`` have been timed, so that fast encoders are
    not judged on a few tens of milliseconds.
    """
    run()
    best, timed, calls = float("inf"), 0.0, 0
    while calls < repeats or (timed < min_seconds and calls < 30):
        start = time.perf_counter()
        run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        best, timed, calls = min(best, seconds), timed + seconds, calls + 1
    return best


def encoder_speed(encoder, batch: torch.Tensor, device: str) -> tuple[float, float, float]:
    """(GFLOP per patch, network patches/s, encoder patches/s) on a batch of uint8 patches in memory.

    The network alone runs on the preprocessed batch; the encoder takes the uint8 patches, as ``embed_patches``
    gives them, and converts, resizes and normalises them too. Each the best call of :func:`best_seconds`, warm.
    """
    from torch.utils.flop_counter import FlopCounterMode

    encoder = encoder.to(device)  # once, outside the timed calls (the networks and their buffers alike)
    with torch.inference_mode():
        x = batch.to(device)
        parts = getattr(encoder, "encoders", [encoder])
        inputs = [p.preprocess(x) for p in parts]
        with FlopCounterMode(display=False) as counter:
            for p, xi in zip(parts, inputs, strict=True):
                p.net(xi[:1])
        gflop = counter.get_total_flops() / 1e9

        def networks():
            for p, xi in zip(parts, inputs, strict=True):
                with p.autocast():  # the precision embed_patches runs it in
                    p.net(xi)

        network = best_seconds(networks, device)
        whole = best_seconds(lambda: encoder(x), device)
    return gflop, len(batch) / network, len(batch) / whole


def embed_timed(sdata, encoder: str, batch_size: int, device: str, precision: str) -> tuple[float, float, float]:
    """(seconds, seconds building the encoder, seconds inside the encoder) of one ``genar.pp.embed_patches`` call.

    The encoder that ``embed_patches`` builds is timed from its forward pre-hook to its forward hook (on a GPU, to the
    end of its kernels), so the last number is the encoder's own share while reading runs beside it on the other
    threads. Building it (a foundation ViT's random initialisation: seconds on the CPU) is timed apart.
    """
    build = genar.encoders.get_encoder
    inside, built = [], []

    def finished(*_):
        if device.startswith("cuda"):
            torch.cuda.synchronize()  # the forward pass only queued its kernels; embed_patches waits for them next
        inside.append(time.perf_counter())

    def timed_build(name):
        start = time.perf_counter()
        model = build(name)
        built.append(time.perf_counter() - start)
        model.register_forward_pre_hook(lambda *_: inside.append(-time.perf_counter()))
        model.register_forward_hook(finished)
        return model

    genar.encoders.get_encoder = timed_build
    try:
        gc.collect()  # not a collection of the objects that loading the data left behind
        start = time.perf_counter()
        genar.pp.embed_patches(
            sdata,
            encoder=encoder,
            batch_size=batch_size,
            device=device,
            precision=precision,
            key_added=f"X_{encoder}",
            overwrite=True,
        )
        return time.perf_counter() - start, sum(built), sum(inside)
    finally:
        genar.encoders.get_encoder = build


def matmul_peak(device: str, dtype: torch.dtype) -> float:
    """The measured matmul GFLOP/s of ``device`` in ``dtype`` (the CPU: float32, as in ``benchmarks/speed.py``)."""
    from speed import matmul_peak_gflops

    if not device.startswith("cuda"):
        return matmul_peak_gflops()
    return matmul_peak_gflops(n=8192, repeats=10, dtype=str(dtype).removeprefix("torch."), device=device)


def network_dtype(model, device: str) -> torch.dtype:
    """The dtype the (first) network of ``model`` runs in on ``device``: the one its GFLOP/s are set against."""
    parts = getattr(model, "encoders", [model])
    return parts[0].compute_dtype(torch.device(device).type)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", nargs="+", default=["default", "efficientnet_lite0_mid", "color_texture"])
    parser.add_argument("--n-patches", type=int, default=256, help="spots of the synthetic slide (no her2st data)")
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["C4", "C3"],
        help="her2st sections whose spots are the patches (all four, B4 C2 C3 C4: 834, nearer a slide's steady rate)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", choices=["auto", "32"], help="as in embed_patches")
    args = parser.parse_args()
    genar.settings.show_progress_bar = False
    for name, arch in ARCHITECTURES.items():
        a = VIT_ARGS[arch]
        register(
            EncoderSpec(
                name=name,
                build=lambda a=a: VisionTransformer(a).eval(),
                dim=a.dim,
                input_size=a.img_size,
                gpu_dtype=get_spec(arch).gpu_dtype,
            ),
            overwrite=True,
        )
    sdata = patches_sdata(args.n_patches, args.sections)
    n = sdata.tables["genar"].n_obs
    peaks = {torch.float32: matmul_peak(args.device, torch.float32)}
    print(
        f"{n} patches of {sdata.tables['genar'].uns['genar_patches']['params']['patch_px']} px, batch "
        f"{args.batch_size}, device {args.device} (precision {args.precision}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; "
        f"float32 matmul peak {peaks[torch.float32]:.0f} GFLOP/s"
    )
    rates = []
    for _ in range(2):  # the first pass also opens the image stores and fills the OS page cache
        # Python's first full garbage collection after loading the data (~0.3 s here) would otherwise fall in the
        # first pass: it is a cost of having loaded the data, not of reading patches
        gc.collect()
        start = time.perf_counter()
        for _ in genar.pp.iter_patches(sdata, batch_size=args.batch_size):
            pass
        rates.append(n / (time.perf_counter() - start))
    print(
        f"patch reading alone (each image chunk decoded once, resampled on threads): {rates[0]:.0f} patches/s on the "
        f"first pass, {rates[1]:.0f} on the next (a new reader: the same decoding, files in the OS cache)\n"
    )
    batch = torch.from_numpy(genar.pp.read_patches(sdata, np.arange(min(args.batch_size, n))))
    print(
        "| encoder | dim | GFLOP/patch | network patches/s | GFLOP/s | % of matmul peak | encoder patches/s "
        "| embed_patches patches/s | its encoder patches/s | building the encoder, s "
        "| embed_patches patches/s after the build |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for encoder in args.encoders:
        model = genar.encoders.get_encoder(encoder)
        use_reduced_precision(model, enabled=args.precision == "auto")
        dtype = network_dtype(model, args.device)
        if dtype not in peaks:
            peaks[dtype] = matmul_peak(args.device, dtype)
        gflop, net_rate, encoder_rate = encoder_speed(model, batch, args.device)
        seconds, building, in_encoder = min(
            embed_timed(sdata, encoder, args.batch_size, args.device, args.precision) for _ in range(2)
        )
        dim = sdata.tables["genar"].obsm[f"X_{encoder}"].shape[1]
        achieved = gflop * net_rate
        print(
            f"| {encoder} | {dim} | {gflop:.3f} | {net_rate:.0f} | {achieved:.1f} | "
            f"{100 * achieved / peaks[dtype]:.0f}% ({str(dtype).removeprefix('torch.')}) | {encoder_rate:.0f} | "
            f"{n / seconds:.0f} | {n / in_encoder:.0f} | {building:.2f} | {n / (seconds - building):.0f} |"
        )


if __name__ == "__main__":
    main()
