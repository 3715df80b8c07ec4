"""The transformer trainer on a tiny profile: real MiniLM, real texts, a handful of steps."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from taskselect import stages
from taskselect.config import load_params
from taskselect.data import SOURCES
from taskselect.metrics import classification_metrics
from taskselect.tracking import log_pipeline, use_store
from taskselect.trainers import Examples, load_trainer
from taskselect.trainers.transformer import TransformerTrainer, split_validation


@pytest.fixture(scope="module")
def tweets_and_questions():
    """An easy split of real texts: airline tweets ('tweet') against TREC questions ('question')."""
    tweets = SOURCES["airline"].load().sample(60, random_state=0)["text"].tolist()
    questions = SOURCES["trec"].load().sample(60, random_state=0)["text"].tolist()
    labels = np.array(["tweet"] * 60 + ["question"] * 60)
    texts = tweets + questions
    order = np.random.default_rng(0).permutation(120)
    texts, labels = [texts[i] for i in order], labels[order]
    assert TransformerTrainer.consumes == "texts"  # so the stages load no embeddings for it
    return Examples(texts=texts[:80], labels=labels[:80]), Examples(texts=texts[80:], labels=labels[80:])


def tiny(**overrides) -> TransformerTrainer:
    settings = dict(max_length=32, batch_size=8, epochs=1, max_steps=8, learning_rate=3e-4, val_fraction=0.1, seed=0)
    return TransformerTrainer(**{**settings, **overrides})


def test_fine_tuning_learns_an_easy_split_and_round_trips(tweets_and_questions, tmp_path):
    train, test = tweets_and_questions
    model = tiny().fit(train)
    history = model.history_
    assert history["steps"] == 8 and history["n_train"] + history["n_val"] == 80
    assert history["step_loss"][-1] < history["step_loss"][0]
    scores = model.predict_scores(test)
    assert scores.shape == (40, 2) and np.allclose(scores.sum(axis=1), 1)
    accuracy = (np.asarray(model.classes_)[scores.argmax(axis=1)] == test.labels).mean()
    assert accuracy >= 0.85  # chance is 0.5

    model.save(tmp_path)
    assert (tmp_path / "model.safetensors").stat().st_size > 50e6  # the whole fine-tuned backbone
    again = TransformerTrainer.load(tmp_path)
    assert again.classes_ == model.classes_
    np.testing.assert_allclose(again.predict_scores(test), scores, atol=1e-6)


def test_the_same_seed_gives_the_same_model(tweets_and_questions):
    train, test = tweets_and_questions
    a, b = tiny(max_steps=1, val_fraction=0).fit(train), tiny(max_steps=1, val_fraction=0).fit(train)
    assert a.history_["step_loss"] == b.history_["step_loss"]
    few = Examples(texts=test.texts[:8])
    np.testing.assert_allclose(a.predict_scores(few), b.predict_scores(few), atol=1e-6)


def test_validation_keeps_every_copy_of_a_text_on_one_side():
    texts = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] * 2 + ["a"]
    train, val = split_validation(texts, 0.2, seed=3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(21))
    held = {texts[i] for i in val}
    assert len(held) == 2 and not held & {texts[i] for i in train}
    assert split_validation(texts[:3], 0.1, seed=0)[1].size == 0  # 10% of 3 texts rounds to none


def test_finetune_and_evaluate_stages_run_the_transformer(tmp_path, embedding_cache):
    """The stages on a tiny custom benchmark: the model directory holds safetensors, evaluation
    predicts only the task's labels although the selection also holds off-task rows, and the model
    logged to MLflow takes texts and reproduces the logged F1."""
    airline = SOURCES["airline"].load().sample(90, random_state=1)[["text", "label"]]
    sms = SOURCES["sms"].load().head(30)[["text", "label"]]
    pd.concat([airline.iloc[:50], sms]).to_csv(tmp_path / "pool.csv", index=False)
    airline.iloc[50:60].to_csv(tmp_path / "query.csv", index=False)
    airline.iloc[60:].to_csv(tmp_path / "test.csv", index=False)
    params = load_params(None, [
        f"data.pool={tmp_path / 'pool.csv'}", f"data.query={tmp_path / 'query.csv'}",
        f"data.test={tmp_path / 'test.csv'}", "finetune.trainer=transformer",
        "finetune.transformer.max_steps=2", "finetune.transformer.max_length=32",
        "finetune.transformer.batch_size=8", "evaluate.n_boot=50", f"embed.cache_dir={embedding_cache}",
        f"track.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
    ])
    ws = stages.Workspace(tmp_path / "data")
    stages.prepare(params.data, ws)
    stages.embed(params.embed, ws)
    stages.index(params.index, ws)
    run = stages.Run("full", 1.0, 0)
    selected = stages.select(params.select, run, ws)
    assert selected["n_on_task"] == 50 and selected["target_share"] == pytest.approx(50 / 80)
    for split in ("pool", "test"):  # the transformer consumes texts: its stages read no embeddings
        ws.embedding(split).unlink()
    trained = stages.finetune(params.finetune, run, ws)
    assert trained["trainer"] == "transformer" and trained["history"]["steps"] == 2
    assert set(trained["classes"]) >= {"sms:ham"}
    assert isinstance(load_trainer("transformer", ws.model(run)), TransformerTrainer)
    metrics = stages.evaluate(params.evaluate, run, ws)
    saved = json.loads((ws.evaluation(run) / "metrics.json").read_text())
    assert saved["f1_macro"] == metrics["f1_macro"] and saved["trainer"] == "transformer"
    assert set(saved["f1_per_class"]) == {"negative", "neutral", "positive"}
    assert np.sum(saved["confusion"]) == 30  # every test row predicted as a task label
    assert (ws.evaluation(run) / "confusion.png").is_file()

    stages.report(params, ws, tmp_path / "out", runs=[run])
    log_pipeline(ws.root, tmp_path / "out")
    use_store(params.track.tracking_uri)
    child = mlflow.search_runs(experiment_names=["taskselect-custom"], filter_string="tags.kind = 'selection'",
                               output_format="list")[0]
    model = mlflow.pyfunc.load_model(f"runs:/{child.info.run_id}/model")
    test = pd.read_parquet(ws.prepared / "test.parquet")
    predicted = model.predict(test["text"].to_numpy(dtype=str))
    f1 = classification_metrics(test["label"], predicted, ["negative", "neutral", "positive"])["f1_macro"]
    assert f1 == pytest.approx(child.data.metrics["f1_macro"], abs=1e-12)
