"""Fine-tuning the MiniLM backbone with a classification head (torch, on a CPU)."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import threading
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer, get_linear_schedule_with_warmup
from transformers.utils import logging as hf_logging

from taskselect.config import TransformerParams
from taskselect.embedding import resolve_model_path
from taskselect.errors import TaskselectError
from taskselect.trainers.base import Examples

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
SETTINGS = "trainer.json"
_default = TransformerParams.default  # each parameter's default, as finetune.transformer declares it
# One fine-tune at a time per process: dropout draws from torch's process-wide generator, so two
# fits in threads (the Prefect flow's task runner) would interleave draws and lose determinism;
# and on a CPU one fit already uses every core.
_FIT_LOCK = threading.Lock()


class MeanPoolClassifier(torch.nn.Module):
    """backbone -> mean of its token states (the pooling of MiniLM's sentence embeddings) -> linear.

    forward returns (batch, n_classes) logits.
    """

    def __init__(self, backbone, n_classes: int, dropout: float):
        super().__init__()
        self.backbone = backbone
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(backbone.config.hidden_size, n_classes)

    def forward(self, input_ids, attention_mask, **_):
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.classifier(self.dropout(pooled))


def split_validation(texts: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers (train, validation): a `fraction` of the distinct texts, chosen with `seed`.

    Every copy of a text lands on the same side, so a row drawn twice never validates itself.
    The validation side is empty when it would hold no text or leave none to train on.
    """
    distinct, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    n_val = round(fraction * distinct.size)
    if n_val < 1 or n_val >= distinct.size:
        return np.arange(len(texts)), np.zeros(0, dtype=np.int64)
    held = np.zeros(distinct.size, dtype=bool)
    held[np.random.default_rng(seed).choice(distinct.size, n_val, replace=False)] = True
    return np.flatnonzero(~held[inverse]), np.flatnonzero(held[inverse])


class TransformerTrainer:
    """Fine-tune every weight of a sentence-transformer backbone plus a linear head on its mean pooling.

    model: 'all-MiniLM-L6-v2' (packaged) or a local model directory.
    max_length: tokens kept per text; longer texts are truncated.
    batch_size: texts per optimisation step.
    epochs: passes over the training rows at most.
    max_steps: optimisation steps at most (None: epochs decide).
    learning_rate: peak AdamW learning rate, reached after warmup_ratio of the steps, then
        decayed linearly to 0.
    weight_decay: AdamW decay of every weight except biases and LayerNorms.
    warmup_ratio: fraction of the steps spent warming the learning rate up.
    dropout: dropout on the pooled embedding before the head.
    val_fraction: share of the distinct selected texts held out to choose the epoch to keep;
        0 keeps the last.
    patience: epochs without a lower validation loss before training stops.
    seed: seeds the head's initialisation, dropout, the validation split and the batch order.
    """

    consumes = "texts"

    def __init__(
        self,
        model: str = _default("model"),
        max_length: int = _default("max_length"),
        batch_size: int = _default("batch_size"),
        epochs: int = _default("epochs"),
        max_steps: int | None = _default("max_steps"),
        learning_rate: float = _default("learning_rate"),
        weight_decay: float = _default("weight_decay"),
        warmup_ratio: float = _default("warmup_ratio"),
        dropout: float = _default("dropout"),
        val_fraction: float = _default("val_fraction"),
        patience: int = _default("patience"),
        seed: int = 0,
    ):
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_steps = max_steps
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.dropout = dropout
        self.val_fraction = val_fraction
        self.patience = patience
        self.seed = seed
        TransformerParams.check(self, "finetune.transformer")  # built directly, held to params.yaml's constraints
        self.classes_: list[str] = []
        self.history_: dict = {}
        self._net = None
        self._tokenizer = None

    def _settings(self) -> dict:
        return {name: getattr(self, name) for name in [*TransformerParams.model_fields, "seed"]}

    def _batch(self, texts: list[str]):
        return self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")

    def _loss(self, texts: list[str], targets: np.ndarray) -> float:
        """Mean cross-entropy of the current weights on (texts, targets), without dropout."""
        picked = self._scores(texts)[np.arange(len(targets)), targets]
        return float(-np.log(np.clip(picked, 1e-12, None)).mean())

    def _optimizer(self, total_steps: int):
        """AdamW (no decay on biases and LayerNorms) and its warmup-then-linear-decay schedule."""
        no_decay = {n for n, _ in self._net.named_parameters() if n.endswith("bias") or "LayerNorm" in n}
        groups = [
            {"params": [p for n, p in self._net.named_parameters() if n not in no_decay], "weight_decay": self.weight_decay},
            {"params": [p for n, p in self._net.named_parameters() if n in no_decay], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.learning_rate)
        return optimizer, get_linear_schedule_with_warmup(optimizer, round(self.warmup_ratio * total_steps), total_steps)

    def fit(self, examples: Examples) -> "TransformerTrainer":
        """Train on every row of `examples` (copies included), keeping the epoch of lowest validation loss.

        history_: step_loss (per step), train_loss and val_loss (per epoch), best_epoch, steps,
        epochs_run, n_train, n_val.
        """
        if examples.labels is None or len(examples) == 0:
            raise TaskselectError("finetune: the selection is empty; nothing to train on")
        labels = np.asarray(examples.labels, dtype=str)
        self.classes_ = sorted(set(labels.tolist()))
        targets = np.searchsorted(self.classes_, labels)
        texts = list(examples.texts)
        train, val = split_validation(texts, self.val_fraction, self.seed)

        with _FIT_LOCK:
            self._train(texts, targets, train, val)
        return self

    def _train(self, texts: list[str], targets: np.ndarray, train: np.ndarray, val: np.ndarray) -> None:
        """Build the network from the backbone and run the epochs on rows `train`, validating on `val`."""
        val_texts = [texts[i] for i in val]
        path = resolve_model_path(self.model)
        torch.manual_seed(self.seed)
        hf_logging.set_verbosity_error()  # "weights newly initialised": the head is, by design
        self._tokenizer = AutoTokenizer.from_pretrained(str(path))
        self._net = MeanPoolClassifier(AutoModel.from_pretrained(str(path)), len(self.classes_), self.dropout)
        total = self.epochs * math.ceil(train.size / self.batch_size)
        if self.max_steps is not None:
            total = min(total, self.max_steps)
        optimizer, schedule = self._optimizer(total)
        order_rng = np.random.default_rng([self.seed, 1])
        history = {"step_loss": [], "train_loss": [], "val_loss": [], "best_epoch": None,
                   "n_train": int(train.size), "n_val": int(val.size)}
        best_loss, best_state, waited = math.inf, None, 0
        with tqdm(total=total, desc="fine-tuning", unit="step") as bar:
            for epoch in range(1, self.epochs + 1):
                self._net.train()
                order = train[order_rng.permutation(train.size)]
                batches = [order[i : i + self.batch_size] for i in range(0, order.size, self.batch_size)]
                losses = []
                for rows in batches[: total - len(history["step_loss"])]:
                    logits = self._net(**self._batch([texts[i] for i in rows]))
                    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(targets[rows]))
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    losses.append(loss.item())
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
                history["step_loss"] += losses
                history["train_loss"].append(float(np.mean(losses)))
                if val.size:
                    history["val_loss"].append(self._loss(val_texts, targets[val]))
                    log.info("epoch %d: train loss %.4f, validation loss %.4f", epoch, history["train_loss"][-1], history["val_loss"][-1])
                    if history["val_loss"][-1] < best_loss:
                        best_loss, best_state, waited = history["val_loss"][-1], copy.deepcopy(self._net.state_dict()), 0
                        history["best_epoch"] = epoch
                    else:
                        waited += 1
                if len(history["step_loss"]) == total or waited >= self.patience:
                    break
        if best_state is not None:
            self._net.load_state_dict(best_state)
        self.history_ = {**history, "steps": len(history["step_loss"]), "epochs_run": len(history["train_loss"])}

    def _scores(self, texts: list[str]) -> np.ndarray:
        """(n, len(classes_)) float64 softmax probabilities, batched by text length."""
        self._net.eval()
        out = np.zeros((len(texts), len(self.classes_)))
        by_length = np.argsort([len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size * 2):
                rows = by_length[start : start + self.batch_size * 2]
                logits = self._net(**self._batch([texts[i] for i in rows]))
                out[rows] = torch.softmax(logits.double(), dim=1).numpy()
        return out

    def predict_scores(self, examples: Examples) -> np.ndarray:
        if self._net is None:
            raise TaskselectError("the transformer is not trained")
        return self._scores(list(examples.texts))

    def save(self, directory: str | os.PathLike) -> None:
        """directory/: model.safetensors (backbone + head), config.json, tokenizer files, trainer.json."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self._net.state_dict().items()}, str(directory / WEIGHTS))
        self._net.backbone.config.save_pretrained(directory)
        self._tokenizer.save_pretrained(directory)
        (directory / SETTINGS).write_text(json.dumps(
            {"settings": self._settings(), "classes": self.classes_, "history": self.history_}, indent=2
        ) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "TransformerTrainer":
        directory = Path(directory)
        saved = json.loads((directory / SETTINGS).read_text())
        trainer = cls(**saved["settings"])
        trainer.classes_ = saved["classes"]
        trainer.history_ = saved["history"]
        trainer._tokenizer = AutoTokenizer.from_pretrained(str(directory))
        backbone = AutoModel.from_config(AutoConfig.from_pretrained(str(directory)))
        trainer._net = MeanPoolClassifier(backbone, len(trainer.classes_), trainer.dropout)
        trainer._net.load_state_dict(load_file(str(directory / WEIGHTS)))
        return trainer
