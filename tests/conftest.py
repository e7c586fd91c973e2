"""Shared fixtures: a tiny synthetic SpatialData, and the real her2st sections when they are available."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse

import genar

REPO = Path(__file__).resolve().parents[1]


def her2st_dir() -> Path | None:
    """``$GENAR_DATA_DIR/her2st`` (resolved by genar), else ``../shared/data/her2st`` beside the checkout; or None."""
    candidates = []
    if (env := genar.datasets.data_dir()) is not None:
        candidates.append(env / "her2st")
    candidates.append(REPO.parent / "shared" / "data" / "her2st")
    return next((c for c in candidates if (c / "ST-cnts").is_dir()), None)


def make_sdata(
    *,
    n_sections: int = 2,
    n_spots: int = 40,
    n_genes: int = 32,
    size: int = 256,
    microns_per_pixel: float | None = 1.0,
    seed: int = 0,
):
    """Synthetic SpatialData in the layout of `genar.datasets.her2st`.

    The image encodes position: red = x, green = y (pixel units, 0..255), blue = 128 + section index. Genes come
    in 4 co-expression modules: module m follows spatial factor m, with Poisson counts.
    """
    from spatialdata import SpatialData
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity

    rng = np.random.default_rng(seed)
    images, shapes, tables = {}, {}, []
    yy, xx = np.mgrid[0:size, 0:size]
    for s in range(n_sections):
        name = f"S{s}"
        img = np.stack([xx % 256, yy % 256, np.full_like(xx, 128 + s)]).astype(np.uint8)
        images[f"{name}_image"] = Image2DModel.parse(
            img, dims=("c", "y", "x"), scale_factors=[2], transformations={name: Identity()}
        )
        xy = rng.uniform(20, size - 20, size=(n_spots, 2)).round()
        shapes[f"{name}_spots"] = ShapesModel.parse(
            xy, geometry=0, radius=np.full(n_spots, 5.0), transformations={name: Identity()}
        )
        factors = np.column_stack([np.sin(xy[:, 0] / 40), np.cos(xy[:, 1] / 30), xy[:, 0] / size, 1 - xy[:, 1] / size])
        module = np.arange(n_genes) % 4
        rate = 3 * np.exp(1.5 * factors[:, module] + 0.1 * rng.normal(size=(n_spots, n_genes)))
        counts = rng.poisson(rate).astype(np.int32)
        obs = pd.DataFrame(
            {"section": name, "region": f"{name}_spots", "instance_id": np.arange(n_spots)},
            index=[f"{name}_{i}" for i in range(n_spots)],
        )
        table = ad.AnnData(
            sparse.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=[f"g{i:02d}" for i in range(n_genes)])
        )
        table.obsm["spatial"] = xy
        tables.append(table)
    adata = ad.concat(tables)
    names = [f"S{s}" for s in range(n_sections)]
    adata.obs["section"] = pd.Categorical(adata.obs["section"], categories=names)
    adata.obs["region"] = pd.Categorical(adata.obs["region"], categories=[f"{n}_spots" for n in names])
    if microns_per_pixel is not None:
        adata.uns["spatial"] = {n: {"scalefactors": {"microns_per_pixel": microns_per_pixel}} for n in names}
    table = TableModel.parse(
        adata, region=[f"{n}_spots" for n in names], region_key="region", instance_key="instance_id"
    )
    return SpatialData(images=images, shapes=shapes, tables={"table": table})


@pytest.fixture(scope="session")
def _sdata_session():
    return make_sdata()


@pytest.fixture
def sdata(_sdata_session):
    """A fresh deep copy of the synthetic SpatialData for each test."""
    return copy.deepcopy(_sdata_session)


@pytest.fixture(scope="session")
def her2st_path() -> Path:
    path = her2st_dir()
    if path is None:
        pytest.skip("her2st data not found: set GENAR_DATA_DIR to the folder holding her2st/ (e.g. ../shared/data)")
    return path


@pytest.fixture(scope="session")
def genar_cache(tmp_path_factory) -> Path:
    """A ``GENAR_CACHE_DIR`` for the session; the real sections' image pyramids are built into it once."""
    return tmp_path_factory.mktemp("genar_cache")


@pytest.fixture(scope="session")
def her2st_sdata(her2st_path, genar_cache):
    """All four real sections, loaded once per session (image pyramids cached where ``genar_cache`` expects them)."""
    import genar

    return genar.datasets.her2st(her2st_path, image_cache=genar_cache / "images")


@pytest.fixture
def her2st(her2st_sdata):
    """A copy of the real sections that a test may modify (images stay shared and lazy)."""
    from spatialdata import SpatialData

    return SpatialData(
        images=dict(her2st_sdata.images),
        shapes={k: v.copy() for k, v in her2st_sdata.shapes.items()},
        tables={k: v.copy() for k, v in her2st_sdata.tables.items()},
    )


# --- a prepared and a trained synthetic panel, shared by tests/tl and tests/pl ---------------------------------

TINY = genar.GenARConfig(width=16, depth=1, heads=2, mlp_ratio=2.0, batch_size=32, lr=3e-3, cap_quantile=1.0)


@pytest.fixture
def tiny_config():
    """A model small enough to train in a second."""
    return TINY


@pytest.fixture(scope="session")
def _prepared_session(_sdata_session):
    sdata = copy.deepcopy(_sdata_session)
    genar.pp.select_genes(sdata, 16, train_sections=["S0"])
    genar.pp.cluster_genes(sdata, scales=(1, 4, 16))
    genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)
    genar.pp.embed_patches(sdata, encoder="color_texture", show_progress_bar=False)
    return sdata


@pytest.fixture
def prepared(_prepared_session):
    """Synthetic sections after every pp step (panel of 16 genes chosen on S0)."""
    return copy.deepcopy(_prepared_session)


@pytest.fixture(scope="session")
def _trained_session(_prepared_session):
    return genar.tl.fit(
        copy.deepcopy(_prepared_session), train_sections=["S0"], config=TINY, max_epochs=3, show_progress_bar=False
    )


@pytest.fixture
def trained(_trained_session):
    return copy.deepcopy(_trained_session)


def deep_equal(a, b) -> bool:
    """Deep equality of the values found in AnnData and SpatialData (arrays, frames, nested dicts)."""
    if sparse.issparse(a) or sparse.issparse(b):
        return sparse.issparse(a) and sparse.issparse(b) and a.shape == b.shape and (a != b).nnz == 0
    if isinstance(a, pd.DataFrame | pd.Series | pd.Index):
        return type(a) is type(b) and a.equals(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=np.asarray(a).dtype.kind == "f")
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.fixture
def same():
    """:func:`deep_equal`, for tests that compare AnnData slots."""
    return deep_equal


# --- a small randomised GenARModule, shared by tests/module and tests/train -----------------------------------------

MODULE_SCALES = (1, 2, 4, 6, 12)  # 4 -> 6 does not nest: exercises the averaging transfer


def _make_module(**kw):
    torch.manual_seed(0)
    args = {
        "scales": MODULE_SCALES,
        "n_genes": 12,
        "vocab": 30,
        "feature_dim": 5,
        "width": 32,
        "depth": 2,
        "heads": 4,
        "mlp_ratio": 2.0,
    }
    args.update(kw)
    module = genar.module.GenARModule(**args)
    # adaLN-Zero starts every block as the identity; randomise so the tests see real attention
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return module.eval()


def _module_inputs(B=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, 5, generator=g),
        torch.rand(B, 2, generator=g),
        torch.randint(0, 30, (B, sum(MODULE_SCALES)), generator=g),
    )


@pytest.fixture
def make_module():
    """A factory of small GenARModules (scales :data:`MODULE_SCALES`, 12 genes, vocab 30) with random weights."""
    return _make_module


@pytest.fixture
def module_inputs():
    """A factory of ``(features, coords, tokens)`` for :func:`make_module`'s modules."""
    return _module_inputs


# --- real slide files for the reader tests, written by tifffile from a shared her2st H&E image (once per session) --

#: Micrometres per pixel written into the test slides: her2st's C4 pixel size, as genar.datasets.her2st derives it.
C4_PIXEL_SIZE_UM = 0.6877761364486454


def make_pyramid(rgb: np.ndarray, n_levels: int = 5) -> list[np.ndarray]:
    from PIL import Image

    levels = [rgb]
    for _ in range(n_levels - 1):
        prev = levels[-1]
        size = (prev.shape[1] // 2, prev.shape[0] // 2)
        levels.append(np.asarray(Image.fromarray(prev).resize(size, Image.Resampling.BOX)))
    return levels


def write_slide(path, levels, *, compression="zlib", resolution_um=None, ome_um=None, resolutionunit="CENTIMETER"):
    """A tiled pyramidal TIFF: the full image with its reduced levels as SubIFDs, with or without pixel-size tags."""
    import tifffile

    options = {"tile": (512, 512), "photometric": "rgb", "compression": compression}
    metadata = None
    if ome_um is not None:
        metadata = {"axes": "YXS", "PhysicalSizeX": ome_um, "PhysicalSizeY": ome_um, "PhysicalSizeXUnit": "µm"}
    with tifffile.TiffWriter(path, bigtiff=True, ome=ome_um is not None) as tw:
        extra = {}
        if resolution_um is not None:
            per_unit = {"CENTIMETER": 1e4, "INCH": 25400.0}[resolutionunit]
            extra = {
                "resolution": (per_unit / resolution_um, per_unit / resolution_um),
                "resolutionunit": resolutionunit,
            }
        tw.write(levels[0], subifds=len(levels) - 1, metadata=metadata, **extra, **options)
        for level in levels[1:]:
            tw.write(level, subfiletype=1, **options)
    return path


@pytest.fixture(scope="session")
def c4_rgb(her2st_path) -> np.ndarray:
    """Section C4's H&E image, decoded (9916 × 9278 px)."""
    from genar.io._images import read_rgb

    return np.ascontiguousarray(read_rgb(her2st_path / "ST-imgs/C/C4/5714_HE_BT_D2.jpg").transpose(1, 2, 0))


@pytest.fixture(scope="session")
def c4_slides(c4_rgb, tmp_path_factory) -> dict:
    """C4 as a JPEG-tiled pyramidal TIFF with resolution tags, and as an OME-TIFF with PhysicalSizeX only."""
    folder = tmp_path_factory.mktemp("slides")
    levels = make_pyramid(c4_rgb)
    return {
        "tiff": write_slide(folder / "C4.tif", levels, compression="jpeg", resolution_um=C4_PIXEL_SIZE_UM),
        "ome": write_slide(folder / "C4.ome.tif", levels, ome_um=C4_PIXEL_SIZE_UM),
        "levels": levels,
        "folder": folder,
        "pixel_size_um": C4_PIXEL_SIZE_UM,
    }


@pytest.fixture(scope="session")
def slide_tools():
    """What the reader tests need to write slides of their own: ``(write_slide, make_pyramid, C4_PIXEL_SIZE_UM)``."""
    return write_slide, make_pyramid, C4_PIXEL_SIZE_UM


# --- a local stand-in for the Hugging Face Hub, which the real huggingface_hub client talks to (no network here) ----
# It serves the part of the Hub's HTTP API that pushing and loading a model use: create a repository, create a branch,
# validate a model card's metadata, pre-upload (every file "regular", sent inline), commit, and resolve a file at a
# branch or commit with the headers the client reads (``X-Repo-Commit``, ``ETag``). It answers errors as the Hub does
# (``X-Error-Code``: ``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``, ``GatedRepo``), so the client raises
# its own error classes.


@dataclass
class Repo:
    branches: dict[str, str] = field(default_factory=lambda: {"main": ""})  # branch -> commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"": {}})  # commit -> files
    gated: bool = False


class HubStandIn:
    """The repositories, and the server thread that serves them at :attr:`endpoint`."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def create(self, repo_id: str, *, gated: bool = False) -> Repo:
        """A new empty repository (as pushing would create it), gated if asked."""
        self.repos[repo_id] = Repo(gated=gated)
        return self.repos[repo_id]

    def commit(self, repo_id: str, branch: str, files: dict[str, bytes]) -> str:
        repo = self.repos[repo_id]
        parent = repo.commits[repo.branches[branch]]
        tree = {**parent, **files}
        oid = hashlib.sha1(repr(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in tree.items())).encode()).hexdigest()
        repo.commits[oid] = tree
        repo.branches[branch] = oid
        return oid


def _handler(hub: HubStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict | None = None, *, head: bool = False) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _json(self, status: int, value) -> None:
            self._reply(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

        def _error(self, status: int, code: str, *, head: bool = False) -> None:
            self._reply(status, json.dumps({"error": code}).encode(), {"X-Error-Code": code}, head=head)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def do_POST(self) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append(("POST", path))
            body = self._body()
            if path == "/api/repos/create":
                spec = json.loads(body)
                repo_id = f"{spec['organization']}/{spec['name']}" if spec.get("organization") else spec["name"]
                hub.repos.setdefault(repo_id, Repo())
                return self._json(200, {"url": f"{hub.endpoint}/{repo_id}"})
            if path == "/api/validate-yaml":  # the client checks a README's metadata before committing it
                return self._json(200, {"errors": [], "warnings": []})
            parts = path.split("/")  # /api/models/<owner>/<name>/<action>/<revision>
            if len(parts) < 6:
                return self._error(404, "NotFound")
            repo_id, action, revision = "/".join(parts[3:5]), parts[5], "/".join(parts[6:])
            if repo_id not in hub.repos:
                return self._error(404, "RepoNotFound")
            repo = hub.repos[repo_id]
            if action == "branch":
                repo.branches.setdefault(revision, repo.branches["main"])
                return self._json(200, {})
            if revision not in repo.branches:
                return self._error(404, "RevisionNotFound")
            if action == "preupload":
                files = json.loads(body)["files"]
                return self._json(
                    200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
                )
            if action == "commit":
                files = {}
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                oid = hub.commit(repo_id, revision, files)
                url = f"{hub.endpoint}/{repo_id}/commit/{oid}"
                return self._json(200, {"commitUrl": url, "commitOid": oid, "pullRequestUrl": None})
            return self._error(404, "NotFound")

        def _resolve(self, *, head: bool) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append(("HEAD" if head else "GET", path))
            parts = path.strip("/").split("/")  # <owner>/<name>/resolve/<revision>/<file>
            if len(parts) < 5 or parts[2] != "resolve":
                return self._error(404, "NotFound", head=head)
            repo_id, revision, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", head=head)
            if repo.gated and not self.headers.get("authorization"):
                return self._error(403, "GatedRepo", head=head)
            commit = repo.branches.get(revision, revision if revision in repo.commits else None)
            if commit is None:
                return self._error(404, "RevisionNotFound", head=head)
            content = repo.commits[commit].get(name)
            if content is None:
                return self._error(404, "EntryNotFound", head=head)
            etag = f'"{hashlib.sha1(content).hexdigest()}"'
            self._reply(200, content, {"X-Repo-Commit": commit, "ETag": etag}, head=head)

        def do_HEAD(self) -> None:
            self._resolve(head=True)

        def do_GET(self) -> None:
            self._resolve(head=False)

    return Handler


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The stand-in Hub (:class:`HubStandIn`), with huggingface_hub pointed at it and a fresh cache; no token set."""
    constants = pytest.importorskip("huggingface_hub.constants")
    with HubStandIn() as stand_in:
        monkeypatch.setattr(constants, "ENDPOINT", stand_in.endpoint)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", stand_in.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored login
        yield stand_in
