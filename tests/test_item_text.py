"""Item text from dataset fields through a template (recux.item_text), and the files dataset's item-text file."""

from __future__ import annotations

import polars as pl
import pytest

from recux import identity, registry
from recux.errors import ConfigError
from recux.item_text import render_item_texts, resolve_template, template_fields

ITEMS = pl.DataFrame(
    {"item_id": [10, 11, 12], "title": ["Toy Story", "Heat", "Nameless"], "release_year": [1995, None, 1990],
     "genres": [["Animation", "Comedy"], ["Crime"], []], "text": ["a", "b", "c"]},
    schema_overrides={"release_year": pl.Int32, "genres": pl.List(pl.String)},
)


def test_template_renders_lists_joined_and_drops_brackets_of_missing_values():
    texts = render_item_texts(ITEMS, "{title} ({release_year}): {genres}", 3)
    expected = []
    for title, year, genres in ITEMS.select("title", "release_year", "genres").iter_rows():
        expected.append(f"{title} ({year}): {', '.join(genres)}" if year is not None
                        else f"{title}: {', '.join(genres)}")
    expected[2] = expected[2].rstrip()  # empty genre list: nothing after the colon
    assert texts == expected
    assert render_item_texts(ITEMS, "{text}", 3) == ITEMS["text"].to_list()


def test_default_template_is_the_dataset_plugins_declared_one_else_the_text_column():
    assert resolve_template(None, "ml-100k") == "{title} ({release_year}): {genres}"
    assert resolve_template(None, "synthetic") == resolve_template(None, "files") == "{text}"
    assert resolve_template("{title}", "ml-100k") == "{title}"


def test_missing_fields_are_named_with_the_available_ones():
    with pytest.raises(ConfigError) as err:
        render_item_texts(ITEMS, "{title} by {director} in {year}", 3, "dataset 'x'")
    msg = str(err.value)
    named = msg.split("which")[0]
    assert "'director'" in named and "'year'" in named and "'title'" not in named
    assert "available fields: title, release_year, genres, text" in msg and "item_text.template" in msg


@pytest.mark.parametrize("bad", ["{title", "{}", "{0}", "  "])
def test_bad_templates_are_refused(bad):
    with pytest.raises(ConfigError, match="item_text.template"):
        render_item_texts(ITEMS, resolve_template(bad, None), 3) if bad.strip() else resolve_template(bad, None)


def test_fields_are_the_root_names():
    assert template_fields("{title!s} {release_year:>6} {genres[0]} {title}") == ["title", "release_year", "genres"]


def test_a_dataset_without_item_features_says_how_to_give_items_text():
    with pytest.raises(ConfigError, match="item_text_path"):
        render_item_texts(None, "{text}", 3, "dataset 'files'")


def test_ml100k_default_gives_title_year_genres():
    """On the real data (when cached): every text is 'title (year): genres' from the item features."""
    from recux.download import data_home

    if not (data_home() / "ml-100k").exists():
        pytest.skip("ML-100K is not cached here")
    ds = registry.build("dataset", "ml-100k", {"download": False}).load()
    texts = render_item_texts(ds.item_features, resolve_template(None, "ml-100k"), ds.n_items)
    rows = ds.item_features.select("title", "release_year", "genres").iter_rows()
    assert texts == [f"{t} ({y}): {', '.join(g)}" if y is not None else f"{t}: {', '.join(g)}" for t, y, g in rows]
    assert texts[0] == "Toy Story (1995): Animation, Children's, Comedy"  # item 1 of u.item


def _files(tmp_path, **extra):
    (tmp_path / "ratings.csv").write_text("user_id,item_id\n1,7\n1,5\n2,5\n2,9\n")
    (tmp_path / "texts.csv").write_text("item_id,description\n9,a nine\n5,a five\n7,a seven\n")
    return registry.build("dataset", "files", {"path": str(tmp_path / "ratings.csv"),
                                               "item_text_path": str(tmp_path / "texts.csv"),
                                               "item_text_col": "description", **extra}).load()


def test_files_item_text_file_gives_one_text_per_item_code(tmp_path):
    ds = _files(tmp_path)
    want = {5: "a five", 7: "a seven", 9: "a nine"}
    assert render_item_texts(ds.item_features, "{text}", ds.n_items) == [want[int(i)] for i in ds.item_ids]


def test_files_item_text_file_joins_the_item_features(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,genre\n5,drama\n7,comedy\n9,war\n")
    ds = _files(tmp_path, item_features_path=str(tmp_path / "items.csv"))
    genre = {5: "drama", 7: "comedy", 9: "war"}
    assert render_item_texts(ds.item_features, "{text} [{genre}]", ds.n_items) == [
        f"a {w} [{genre[int(i)]}]" for i, w in zip(ds.item_ids, ("five", "seven", "nine"), strict=True)]


def test_files_item_text_path_left_null_keeps_published_data_hashes():
    base = {"dataset": {"name": "files", "path": "r.csv", "invalid_timestamps": "error"}}
    with_key = {"dataset": {**base["dataset"], "item_text_path": None}}
    assert identity.data_hash(base) == identity.data_hash(with_key)
    assert identity.data_hash({"dataset": {**base["dataset"], "item_text_path": "t.csv"}}) != identity.data_hash(base)
