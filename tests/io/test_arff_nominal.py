"""Nominal ARFF attributes: yes/no pairs, other categories, identifiers, malformed values and headers."""

from __future__ import annotations

import numpy as np
import pytest

from sparsexc.io import DataFormatError, read_arff

XML = '<labels xmlns="http://mulan.sourceforge.net/labels"><label name="y"/></labels>'


def _read(tmp_path, attributes: str, data: str, **kwargs):
    path = tmp_path / "t.arff"
    path.write_text(f"@relation t\n{attributes}@attribute y {{0,1}}\n@data\n{data}")
    (tmp_path / "t.xml").write_text(XML)
    return read_arff(path, **kwargs)


@pytest.mark.parametrize(
    "declared,positive,negative",
    [
        ("{YES,NO}", "YES", "NO"),
        ("{NO,YES}", "YES", "NO"),
        ("{no,yes}", "yes", "no"),
        ("{0,1}", "1", "0"),
        ("{1,0}", "1", "0"),
        ("{false,true}", "true", "false"),
        ("{True,False}", "True", "False"),
        ("{n,y}", "y", "n"),
        ("{Y,N}", "Y", "N"),
        ("{f,t}", "t", "f"),
        ("{ 'Yes' , 'No' }", "Yes", "No"),
        ('{"no","yes"}', "yes", "no"),
    ],
)
def test_yes_no_pairs_are_one_column_with_the_positive_value_1(tmp_path, declared, positive, negative):
    rows = f"{positive},0\n{negative},0\n{{1 1}}\n{{0 {positive}}}\n{{0 {negative}, 1 1}}\n"
    d = _read(tmp_path, f"@attribute m {declared}\n", rows)
    first_is_positive = declared.strip("{} ").lower().lstrip("'\"").startswith(positive.lower())
    # a sparse row that omits m holds its first declared value (row 3)
    np.testing.assert_array_equal(d.X.toarray().ravel(), [1, 0, 1 if first_is_positive else 0, 1, 0])
    assert d.feature_names == ["m"]


@pytest.mark.parametrize(
    "declared,positive,negative", [("{1,0}", "1", "0"), ("{no,yes}", "yes", "no"), ("{YES,NO}", "YES", "NO")]
)
def test_yes_no_labels_in_dense_and_sparse_rows(tmp_path, declared, positive, negative):
    path = tmp_path / "m.arff"
    path.write_text(
        f"@relation 'm: -C 1'\n@attribute lab {declared}\n@attribute f numeric\n@data\n"
        f"{positive},1\n{negative},2\n{{1 3}}\n{{0 {positive}, 1 4}}\n{{0 {negative}}}\n"
    )
    d = read_arff(path)
    first_is_positive = declared[1:].lower().startswith(positive.lower())
    np.testing.assert_array_equal(d.Y.toarray().ravel(), [1, 0, 1 if first_is_positive else 0, 1, 0])
    np.testing.assert_array_equal(d.X.toarray().ravel(), [1, 2, 3, 4, 0])


def test_other_nominals_become_indicators_but_the_first_value(tmp_path):
    d = _read(
        tmp_path,
        "@attribute c {red,'dark blue',green}\n@attribute n {1,2,3}\n",
        "red,1,0\n'dark blue',3,1\ngreen,2,0\n{0 green}\n{}\n?,?,0\n",
        missing="zero",
    )
    assert d.feature_names == ["c=dark blue", "c=green", "n=2", "n=3"]
    np.testing.assert_array_equal(
        d.X.toarray(), [[0, 0, 0, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    )
    assert d.meta["feature_attributes"] == ["c", "n"]


def _reference(kinds, values, table):
    """Expected X by the documented rules, one value at a time (independent of the vectorised encoder)."""
    out = []
    for row in table:
        x = []
        for kind, vals, v in zip(kinds, values, row):
            if kind == "numeric":
                x.append(float(v))
            elif kind == "yesno":
                x.append(1.0 if v.lower() in ("yes", "1", "true", "y", "t") else 0.0)
            else:
                x.extend(1.0 if v == w else 0.0 for w in vals[1:])
        out.append(x)
    return np.array(out)


def test_random_mixed_files_dense_and_sparse_agree_with_a_reference(tmp_path):
    rng = np.random.default_rng(0)
    pairs = [["YES", "NO"], ["no", "yes"], ["0", "1"], ["1", "0"], ["False", "True"], ["n", "y"]]
    for trial in range(5):
        kinds, values, header = [], [], ""
        for j in range(int(rng.integers(3, 9))):
            kind = ["numeric", "yesno", "category"][int(rng.integers(3))]
            vals = None
            if kind == "yesno":
                vals = pairs[int(rng.integers(len(pairs)))]
            elif kind == "category":
                vals = [f"v{k}" for k in rng.permutation(int(rng.integers(1, 6)))]
            kinds.append(kind)
            values.append(vals)
            header += f"@attribute a{j} " + ("numeric" if vals is None else "{" + ",".join(vals) + "}") + "\n"
        table = [
            [
                str(int(rng.integers(-3, 4))) if k == "numeric" else vals[int(rng.integers(len(vals)))]
                for k, vals in zip(kinds, values)
            ]
            for _ in range(12)
        ]
        labels = rng.integers(0, 2, size=12)
        dense = "".join(",".join(row) + f",{y}\n" for row, y in zip(table, labels))
        sparse = ""
        for row, y in zip(table, labels):  # omit what the sparse convention makes implicit: 0, a first value
            items = [
                f"{j} {v}"
                for j, (v, vals) in enumerate(zip(row, values))
                if (v != "0" if vals is None else v != vals[0])
            ]
            sparse += "{" + ", ".join(items + ([f"{len(row)} 1"] if y else [])) + "}\n"
        want = _reference(kinds, values, table)
        for body in (dense, sparse):
            d = _read(tmp_path, header, body)
            np.testing.assert_array_equal(d.X.toarray(), want, err_msg=f"trial {trial}\n{header}{body}")
            np.testing.assert_array_equal(d.Y.toarray().ravel(), labels)


@pytest.mark.parametrize(
    "attributes,data,line,field",
    [
        ("@attribute m {YES,NO}\n", "yes,0\n", 5, "attribute 'm'"),  # values are case-sensitive, as in Weka
        ("@attribute m {YES,NO}\n", "{0 MAYBE}\n", 5, "attribute 'm'"),
        ("@attribute c {a,b,c}\n", "a,0\nd,1\n", 6, "attribute 'c'"),
        ("@attribute f numeric\n", "1,2\n", 5, "attribute 'y'"),  # label {0,1}: '2' is not declared
    ],
)
def test_undeclared_nominal_values_name_file_line_and_field(tmp_path, attributes, data, line, field):
    with pytest.raises(DataFormatError, match="nominal values") as info:
        _read(tmp_path, attributes, data)
    assert info.value.line == line and info.value.field == field and info.value.path.endswith("t.arff")


@pytest.mark.parametrize(
    "header,line,match",
    [
        ("@relation t\n@attribute c {a,b,a}\n", 2, "distinct, non-empty nominal values"),
        ("@relation t\n@attribute c {a,,b}\n", 2, "distinct, non-empty nominal values"),
        ("@relation t\n@attribute c {}\n", 2, "at least one value"),
        ("@relation t\n@attribute c {a,b\n", 2, "nominal value list"),
        ("@relation t\n@relation u\n", 2, "one @relation line"),
        ("@relation t\n@attribute f numeric\n@relation u\n", 3, "one @relation line"),
        ("@relation t\n@attribute f numerik\n", 2, "an attribute type"),
        ("@relation t\n@attribute\n", 2, "@attribute <name> <type>"),
    ],
)
def test_malformed_headers_name_the_line(tmp_path, header, line, match):
    path = tmp_path / "t.arff"
    path.write_text(header + "@attribute y {0,1}\n@data\n")
    (tmp_path / "t.xml").write_text(XML)
    with pytest.raises(DataFormatError, match=match) as info:
        read_arff(path)
    assert info.value.line == line


def test_indicator_names_that_collide_with_an_attribute_are_an_error(tmp_path):
    with pytest.raises(DataFormatError, match="stay distinct") as info:
        _read(tmp_path, "@attribute c {a,b}\n@attribute 'c=b' numeric\n", "a,1,0\n")
    assert info.value.line == 3 and info.value.found == "c=b"


def test_string_attributes_are_dropped(tmp_path):
    d = _read(tmp_path, "@attribute name string\n@attribute f numeric\n", "'a b',1,1\nc,2,0\n")
    assert d.feature_names == ["f"] and d.meta["dropped_attributes"] == {"name": "string attribute"}
    np.testing.assert_array_equal(d.X.toarray().ravel(), [1, 2])


def _ids(n_values: int, rows: list[int]) -> str:
    return "@attribute id {" + ",".join(f"P{k:04d}" for k in range(n_values)) + "}\n", "".join(
        f"P{r:04d},{r % 3},1\n" for r in rows
    )


@pytest.mark.parametrize(
    "n_values,rows,dropped",
    [
        (101, [5, 0, 77, 100], True),  # more than 100 declared values, a different one on every row
        (100, [5, 0, 77, 99], False),  # 100 values: a category, however the few rows fall
        (101, [5, 0, 5, 100], False),  # a repeated value: not an identifier
        (101, [5], False),  # one row: nothing to tell
    ],
)
def test_row_identifiers_are_dropped_by_rule(tmp_path, n_values, rows, dropped):
    attributes, data = _ids(n_values, rows)
    d = _read(tmp_path, attributes + "@attribute f numeric\n", data)
    if dropped:
        assert d.feature_names == ["f"]
        assert d.meta["dropped_attributes"] == {"id": "identifier: a different value on every row"}
    else:
        assert d.feature_names[-1] == "f" and len(d.feature_names) == n_values
        assert d.meta["dropped_attributes"] == {}


def test_explicit_drop_attributes_still_work(tmp_path):
    d = _read(tmp_path, "@attribute c {a,b}\n@attribute f numeric\n", "a,1,1\nb,2,0\n", drop_attributes=["c"])
    assert d.feature_names == ["f"] and d.meta["dropped_attributes"] == {"c": "drop_attributes"}


@pytest.mark.parametrize("rows", ["{,3 4}\n{0 1}\n", "{,1 4}\n{2 1 3 2, 4 5}\n", "{1 2,,3 4}\n", "{0 1}\n{1 2 3 4}\n"])
def test_malformed_sparse_rows_are_errors_not_shifted_values(tmp_path, rows):
    path = tmp_path / "s.arff"
    attributes = "".join(f"@attribute a{j} numeric\n" for j in range(5))
    path.write_text(f"@relation 's: -C 1'\n@attribute y {{0,1}}\n{attributes}@data\n{rows}")
    with pytest.raises(DataFormatError) as info:
        read_arff(path)
    bad = next(k for k, r in enumerate(rows.splitlines()) if ",," in r or r.startswith("{,") or "2 3" in r)
    assert info.value.line == 9 + bad  # the malformed row itself, whichever check reports it
    assert info.value.field == "row" or info.value.found == "2 3 4"
