"""WordNet hypernym builder: parsing data.noun, transitive closure, the built task (hand-made and real)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from sparsexc.datasets import load
from sparsexc.datasets.wordnet import hypernym_closure, read_noun_synsets
from sparsexc.io.errors import DataFormatError

LICENSE = [
    "  1 This software and database is being provided to you, the LICENSEE, by  ",
    "  2 Princeton University under the following license.  ",
]


def synset_line(offset: str, lemmas: list[str], pointers: list[tuple[str, str, str]], gloss: str) -> str:
    words = " ".join(f"{w} 0" for w in lemmas)
    ptrs = " ".join(f"{sym} {target} {pos} 0000" for sym, target, pos in pointers)
    return f"{offset} 03 n {len(lemmas):02x} {words} {len(pointers):03d} {ptrs} | {gloss}  ".replace("  | ", " | ")


# A small DAG: E has two parents (D and C); F is an instance (@i) of E; '~' (hyponym) and verb pointers
# must be ignored.       A
#                       / \
#                      B   C
#                      |   |
#                      D   |
#                       \ /
#                        E --@i-- F
#                        |
#                        G
A, B, C, D, E, F, G = (f"{k:08d}" for k in (1740, 1930, 2137, 2684, 7846, 9999, 11111))
EXPECTED = {
    A: set(),
    B: {A},
    C: {A},
    D: {B, A},
    E: {D, B, C, A},
    F: {E, D, B, C, A},
    G: {E, D, B, C, A},
}


def tiny_wordnet_lines() -> list[str]:
    return LICENSE + [
        synset_line(A, ["entity"], [("~", B, "n"), ("~", C, "n")], "that which exists"),
        synset_line(B, ["physical_entity"], [("@", A, "n"), ("~", D, "n")], "an entity with physical existence"),
        synset_line(C, ["abstraction", "abstract_entity"], [("@", A, "n"), ("+", "00692347", "v")], "a concept"),
        synset_line(D, ["object"], [("@", B, "n"), ("~", E, "n")], "a tangible thing"),
        synset_line(E, ["person", "individual"], [("@", D, "n"), ("@", C, "n"), ("~i", F, "n")], "a human being"),
        synset_line(F, ["Einstein"], [("@i", E, "n")], "physicist born in Germany"),
        synset_line(G, ["physicist"], [("@", E, "n")], "a scientist trained in physics"),
    ]


def test_parse_skips_license_and_reads_fields(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text("\n".join(tiny_wordnet_lines()) + "\n")
    synsets = read_noun_synsets(path)
    assert [s.offset for s in synsets] == [A, B, C, D, E, F, G]
    by = {s.offset: s for s in synsets}
    assert by[C].lemmas == ("abstraction", "abstract_entity")
    assert by[C].hypernyms == (A,)  # the verb pointer '+' is not a hypernym
    assert by[E].hypernyms == (D, C)
    assert by[F].hypernyms == (E,)  # '@i' counts, '~i' does not
    assert by[G].gloss == "a scientist trained in physics"


def test_closure_matches_hand_computed_ancestors(tmp_path):
    path = tmp_path / "data.noun.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(tiny_wordnet_lines()) + "\n")
    closure = hypernym_closure(read_noun_synsets(path))
    assert {k: set(v) for k, v in closure.items()} == EXPECTED


def test_closure_rejects_cycles_and_dangling_pointers(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text(
        "\n".join([synset_line(A, ["a"], [("@", B, "n")], "x"), synset_line(B, ["b"], [("@", A, "n")], "y")])
    )
    with pytest.raises(DataFormatError, match="acyclic"):
        hypernym_closure(read_noun_synsets(path), path=path)
    path.write_text(synset_line(A, ["a"], [("@", B, "n")], "x") + "\n")
    with pytest.raises(DataFormatError, match=r"line 1.*pointer @"):
        hypernym_closure(read_noun_synsets(path), path=path)


@pytest.mark.parametrize(
    "line, field",
    [
        ("0000174 03 n 01 entity 0 000 | gloss", "synset_offset"),
        ("00001740 03 n zz entity 0 000 | gloss", "w_cnt"),
        ("00001740 03 n 01 entity 0 x00 | gloss", "p_cnt"),
        ("00001740 03 n 01 entity 0 002 @ 00001930 n 0000 | gloss", "pointers"),
    ],
)
def test_malformed_lines_name_line_and_field(tmp_path, line, field):
    path = tmp_path / "data.noun"
    path.write_text("\n".join(LICENSE + [line]) + "\n")
    with pytest.raises(DataFormatError, match=rf"data.noun, line 3: {field}"):
        read_noun_synsets(path)


def _chain_wordnet(tmp_path, n_leaves: int = 40):
    """A data dir with a deeper toy hierarchy, big enough to split and vectorise."""
    lines = list(LICENSE)
    lines.append(synset_line(A, ["entity"], [], "that which exists"))
    groups = [f"{9000000 + g:08d}" for g in range(4)]
    for g, off in enumerate(groups):
        lines.append(synset_line(off, [f"group{g}"], [("@", A, "n")], f"a kind of group number {g} thing"))
    for i in range(n_leaves):
        off = f"{1000000 + i:08d}"
        parent = groups[i % 4]
        lines.append(
            synset_line(
                off,
                [f"leaf{i}"],
                [("@", parent, "n")],
                f"a member of family{i % 4} with shared trait{i % 3} and word{i % 5}",
            )
        )
    folder = tmp_path / "raw" / "wordnet-3.0"
    folder.mkdir(parents=True)
    (folder / "data.noun").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_built_task_is_deterministic_and_labels_are_ancestors(tmp_path, monkeypatch):
    data_dir = _chain_wordnet(tmp_path / "data")
    monkeypatch.setenv("SPARSEXC_CACHE", str(tmp_path / "cache1"))
    first = load("wordnet-hypernyms", data_dir)
    monkeypatch.setenv("SPARSEXC_CACHE", str(tmp_path / "cache2"))
    second = load("wordnet-hypernyms", data_dir)
    assert first.info["cache"] != second.info["cache"]
    for part in ("train", "test"):
        a, b = getattr(first, part), getattr(second, part)
        assert (a.X != b.X).nnz == 0 and (a.Y != b.Y).nnz == 0
        assert a.feature_names == b.feature_names and a.label_names == b.label_names
    assert first.row_ids == second.row_ids
    # 44 synsets, the root has no ancestor: 44 rows, split 80/20 by seed 1.
    assert first.train.n_samples + first.test.n_samples == 44
    assert first.test.n_samples == 9
    names = first.train.label_names
    for part in ("train", "test"):
        data = getattr(first, part)
        for row, row_id in enumerate(first.row_ids[part]):
            labels = {names[j] for j in data.Y.indices[data.Y.indptr[row] : data.Y.indptr[row + 1]]}
            if row_id.startswith("leaf"):
                i = int(row_id.split(".")[0][4:])
                assert labels == {"entity.n.00001740", f"group{i % 4}.n.{9000000 + i % 4:08d}"}
            else:
                assert labels == {"entity.n.00001740"}


def test_real_wordnet_shapes_and_known_ancestors(loaded):
    data = loaded("wordnet-hypernyms")
    # 82,115 noun synsets; only the root 'entity' has no ancestor.
    assert data.train.n_samples + data.test.n_samples == 82114
    assert (data.train.n_samples, data.test.n_samples) == (65691, 16423)
    assert data.n_features == 50000
    assert data.n_labels == 15931
    assert data.info["dropped_train_rows_without_labels"] == 0
    names = data.train.label_names
    row = data.row_ids["train"].index("dog.n.02084071") if "dog.n.02084071" in data.row_ids["train"] else None
    part = data.train
    if row is None:
        row, part = data.row_ids["test"].index("dog.n.02084071"), data.test
    labels = {names[j] for j in part.Y.indices[part.Y.indptr[row] : part.Y.indptr[row + 1]]}
    for ancestor in (
        "canine.n.02083346",
        "carnivore.n.02075296",
        "mammal.n.01861778",
        "animal.n.00015388",
        "organism.n.00004475",
        "entity.n.00001740",
        "domestic_animal.n.01317541",
    ):
        assert ancestor in labels
    assert "cat.n.02121620" not in labels
    # The root is everyone's ancestor: a label with train frequency = all train rows.
    freq = np.asarray(data.train.Y.sum(0)).ravel()
    assert freq[names.index("entity.n.00001740")] == data.train.n_samples


def test_real_vocabulary_terms_all_occur_in_two_training_rows(loaded):
    # min_df=2 applied to the training texts: a vocabulary fitted on train+test would hold terms with a
    # single training row (one more in test).
    data = loaded("wordnet-hypernyms")
    assert np.diff(data.train.X.tocsc().indptr).min() >= 2
    assert data.info["tfidf_fitted_on"] == "train"
