"""The bounded word diff: exact on what it shows, a summary past its cap, any size of text."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.diff import MAX_CHANGED_WORDS, changed_words, diff_words
from monitor.render import diff_html

WORDS = st.lists(st.sampled_from(["a", "b", "c", "the", "and", "x1", "y2", "zeta"]), max_size=60)
SPACES = st.sampled_from([" ", "  ", "\n", "\u00a0", "\t "])


@st.composite
def texts(draw: st.DrawFn) -> str:
    """Prose-like text: words from a small vocabulary, varied white space, edges included."""
    words = draw(WORDS)
    parts = [draw(st.sampled_from(["", " "]))]
    for word in words:
        parts += [word, draw(SPACES)]
    return "".join(parts)


def rebuilt(ops: list[tuple[str, str]]) -> tuple[str, str]:
    before = "".join(t for op, t in ops if op in ("equal", "delete"))
    after = "".join(t for op, t in ops if op in ("equal", "insert"))
    return before, after


@settings(max_examples=300)
@given(texts(), texts())
def test_applying_the_ops_gives_back_both_texts(before: str, after: str) -> None:
    """Equal+deleted chunks rebuild the old text, equal+inserted ones the new, uncapped."""
    ops = diff_words(before, after, max_changed_words=None)
    assert rebuilt(ops) == (before, after)
    assert all(text for _, text in ops)
    # No two equal chunks in a row, and each run of changes is one delete then one insert.
    kinds = [op for op, _ in ops]
    assert "equal equal" not in " ".join(kinds)
    assert "insert delete" not in " ".join(kinds)


@settings(max_examples=50)
@given(texts(), texts(), st.integers(min_value=0, max_value=200))
def test_a_big_text_with_a_local_edit_rebuilds_too(head: str, edit: str, seed: int) -> None:
    """A long text (past the small-piece path) with edits spread through it still rebuilds."""
    rng = random.Random(seed)
    words = [f"w{rng.randrange(3000)}" for _ in range(3000)]
    before = " ".join(words)
    for i in range(0, len(words), rng.randint(5, 400)):
        words[i] = edit.strip() or "new"
    after = head + " ".join(words)
    assert rebuilt(diff_words(before, after, max_changed_words=None)) == (before, after)


def test_a_huge_edited_text_is_summarised_past_the_cap() -> None:
    """Past MAX_CHANGED_WORDS changed words the diff stops with "… N more words changed"."""
    words = [f"word{i % 5000}" for i in range(20_000)]
    before = " ".join(words)
    edited = [("edited" if i % 37 == 36 else w) for i, w in enumerate(words)]
    after = " ".join(edited)
    ops = diff_words(before, after)
    assert ops[-1][0] == "omitted"
    assert ops[-1][1].startswith("… at least ") and ops[-1][1].endswith(" more words changed")
    assert changed_words(ops) <= MAX_CHANGED_WORDS
    shown_before, shown_after = rebuilt(ops[:-1])
    assert before.startswith(shown_before) and after.startswith(shown_after)


def test_a_small_change_in_a_huge_text_is_shown_exactly() -> None:
    """One word changed in 50,000 is one delete and one insert between two equal runs."""
    words = [f"w{i % 777}" for i in range(50_000)]
    before = " ".join(words)
    words[25_000] = "CHANGED"
    after = " ".join(words)
    ops = diff_words(before, after)
    assert [op for op, _ in ops] == ["equal", "delete", "insert", "equal"]
    assert ops[2][1] == "CHANGED"


def test_the_cap_can_cut_one_huge_insertion() -> None:
    """A thousand added words show the first ones, then how many more."""
    ops = diff_words("", " ".join(f"n{i}" for i in range(1000)), max_changed_words=10)
    assert ops == [
        ("insert", "n0 n1 n2 n3 n4 n5 n6 n7 n8 n9"),
        ("omitted", "… 990 more words changed"),
    ]


def test_diff_html_escapes_and_shortens_unchanged_runs() -> None:
    """In HTML, page text is escaped and a long unchanged run keeps only its ends."""
    before = "filler " * 200 + "<i>old</i>"
    after = "filler " * 200 + "<script>x()</script>"
    html = diff_html(diff_words(before, after))
    assert html.startswith("… filler")
    assert html.endswith(
        "<del>&lt;i&gt;old&lt;/i&gt;</del><ins>&lt;script&gt;x()&lt;/script&gt;</ins>"
    )
    assert len(html) < 400
