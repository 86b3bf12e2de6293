"""``wordnet-hypernyms``: a WordNet noun synset's lemmas and gloss -> all of its hypernym ancestors.

``data.noun`` (wndb(5WN)) holds one synset per line::

    offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt [ptr_symbol offset pos source/target ...] | gloss

with ``w_cnt`` a 2-digit hexadecimal number and ``p_cnt`` a 3-digit decimal one. Lines that start with two
spaces are the license header. The labels of a synset are its ancestors under the hypernym (``@``) and
instance-hypernym (``@i``) pointers, i.e. the transitive closure of those edges (a synset is not its own
ancestor). The root ``entity`` has no ancestor, so it has no label and is dropped. A label is named
``<first lemma>.n.<offset>`` (``entity.n.00001740``); the input text is the lemmas (underscores as spaces)
followed by the gloss.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sparsexc.io.errors import DataFormatError

from .splits import Splits

__all__ = [
    "HYPERNYM_POINTERS",
    "NounSynset",
    "build_wordnet_hypernyms",
    "hypernym_closure",
    "read_noun_synsets",
    "synset_label",
]

#: Pointer symbols followed to build the ancestor sets.
HYPERNYM_POINTERS = ("@", "@i")


@dataclass(frozen=True)
class NounSynset:
    offset: str  # 8 digits, as in the file
    lemmas: tuple[str, ...]
    hypernyms: tuple[str, ...]  # offsets of direct '@' / '@i' targets, in file order
    gloss: str
    line: int


def synset_label(synset: NounSynset) -> str:
    """``<first lemma>.n.<offset>``, e.g. ``entity.n.00001740`` (lemma lower-cased; the offset makes it unique)."""
    return f"{synset.lemmas[0].lower()}.n.{synset.offset}"


def _parse_line(path: Path, lineno: int, line: str) -> NounSynset:
    head, bar, gloss = line.partition(" | ")
    if not bar:
        head, bar, gloss = line.rstrip().partition(" |")
    fields = head.split()

    def bad(expected: str, field: str, found: str) -> DataFormatError:
        return DataFormatError(path, expected, line=lineno, field=field, found=found)

    if len(fields) < 4:
        raise bad("'offset lex_filenum ss_type w_cnt ...'", "synset header", line)
    offset, _lexfile, ss_type, w_cnt = fields[:4]
    if not (len(offset) == 8 and offset.isdigit()):
        raise bad("an 8-digit synset offset", "synset_offset", offset)
    if ss_type not in ("n", "s", "a", "r", "v"):
        raise bad("a synset type (n, v, a, s, r)", "ss_type", ss_type)
    try:
        n_words = int(w_cnt, 16)
    except ValueError:
        raise bad("a 2-digit hexadecimal word count", "w_cnt", w_cnt) from None
    pos = 4 + 2 * n_words
    if n_words < 1 or len(fields) <= pos:
        raise bad(f"{n_words} (word, lex_id) pairs then a pointer count", "words", head)
    lemmas = tuple(fields[4:pos:2])
    try:
        n_pointers = int(fields[pos])
    except ValueError:
        raise bad("a 3-digit decimal pointer count", "p_cnt", fields[pos]) from None
    pointers = fields[pos + 1 : pos + 1 + 4 * n_pointers]
    if len(pointers) != 4 * n_pointers:
        raise bad(f"{n_pointers} pointers of 4 fields each", "pointers", " ".join(fields[pos + 1 :]))
    hypernyms = []
    for k in range(0, len(pointers), 4):
        symbol, target, target_pos = pointers[k : k + 3]
        if symbol in HYPERNYM_POINTERS:
            if not (len(target) == 8 and target.isdigit()) or target_pos != "n":
                raise bad(
                    "a noun synset offset after a hypernym pointer", f"pointer {symbol}", f"{target} {target_pos}"
                )
            hypernyms.append(target)
    return NounSynset(offset, lemmas, tuple(hypernyms), gloss.strip(), lineno)


def read_noun_synsets(path: str | os.PathLike[str]) -> list[NounSynset]:
    """Read ``data.noun`` (plain or ``.gz``) in file order, skipping the license header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8", errors="strict") as handle:
        try:
            for lineno, line in enumerate(handle, 1):
                if line.startswith("  ") or not line.strip():
                    continue
                out.append(_parse_line(path, lineno, line.rstrip("\n")))
        except UnicodeDecodeError as exc:
            raise DataFormatError(path, "UTF-8 text", found=str(exc)) from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataFormatError(path, "a complete, valid gzip stream", found=f"{type(exc).__name__}: {exc}") from None
    if not out:
        raise DataFormatError(path, "at least one synset line")
    return out


def hypernym_closure(
    synsets: Iterable[NounSynset], *, path: str | os.PathLike[str] = "<data.noun>"
) -> dict[str, frozenset[str]]:
    """Map each synset offset to the set of offsets of all its ancestors (``@`` and ``@i``, transitively).

    ``ancestors(s) = union over direct hypernyms h of ({h} | ancestors(h))``, computed once per synset in
    depth-first post-order (no recursion). A pointer to a synset not in the file, or a cycle, is an error.
    """
    by_offset = {s.offset: s for s in synsets}
    done: dict[str, frozenset[str]] = {}
    for root in by_offset:
        if root in done:
            continue
        stack = [root]
        on_path = {root}
        while stack:
            node = stack[-1]
            pending = None
            for parent in by_offset[node].hypernyms:
                if parent not in by_offset:
                    raise DataFormatError(
                        path,
                        "hypernym pointers to synsets of this file",
                        line=by_offset[node].line,
                        field="pointer @",
                        found=parent,
                    )
                if parent not in done:
                    if parent in on_path:
                        raise DataFormatError(
                            path,
                            "an acyclic hypernym graph",
                            line=by_offset[node].line,
                            field="pointer @",
                            found=f"cycle through {parent}",
                        )
                    pending = parent
                    break
            if pending is not None:
                stack.append(pending)
                on_path.add(pending)
                continue
            ancestors: set[str] = set()
            for parent in by_offset[node].hypernyms:
                ancestors.add(parent)
                ancestors |= done[parent]
            done[node] = frozenset(ancestors)
            stack.pop()
            on_path.discard(node)
    return done


def build_wordnet_hypernyms(path: Path, *, seed: int, test_fraction: float, name: str = "wordnet-hypernyms") -> Splits:
    """Noun synsets with at least one ancestor: lemmas + gloss -> ancestor synsets (label space from train)."""
    from ._text import build_text_splits

    synsets = read_noun_synsets(path)
    closure = hypernym_closure(synsets, path=path)
    label_of = {s.offset: synset_label(s) for s in synsets}
    rows, texts, labels = [], [], []
    for s in synsets:
        if closure[s.offset]:
            rows.append(label_of[s.offset])
            texts.append(" ".join(lemma.replace("_", " ") for lemma in s.lemmas) + "\n" + s.gloss)
            labels.append(sorted(label_of[a] for a in closure[s.offset]))
    return build_text_splits(
        name,
        rows,
        texts,
        labels,
        test_fraction=test_fraction,
        seed=seed,
        min_label_count=1,
        info={
            "source": os.fspath(path),
            "task": "noun synset lemmas + gloss -> all hypernym ancestors (@, @i)",
            "synsets": len(synsets),
            "synsets_with_ancestors": len(rows),
        },
    )
