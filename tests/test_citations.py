"""find_citations: explicit markers first, else the lexical-overlap rule."""

from __future__ import annotations

import pytest

from rerank_kit.citations import find_citations, markers

PASSAGES = [
    "The boundary layer on a flat plate becomes turbulent at high Reynolds numbers.",
    "Heat transfer to a blunt body in hypersonic flow is highest at the stagnation point.",
    "Buckling of thin cylindrical shells under axial compression depends on imperfections.",
]
IDS = ["d12", "d40", "d7"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Turbulence sets in early [1].", [0]),
        ("See [1, 3] and [2].", [0, 1, 2]),
        ("See [2-3].", [1, 2]),
        ("A footnote.[^2]", [1]),
        ("As [Source 3] says.", [2]),
        ("As [doc 1] says.", [0]),
        ("Per [d40].", [1]),
        ("Nothing here [9] is shown, nor [0].", []),
    ],
)
def test_markers(answer: str, expected: list[int]) -> None:
    assert markers(answer, IDS) == expected


def test_markers_win_over_overlap() -> None:
    answer = "Heat transfer peaks at the stagnation point of a blunt body [3]."
    assert find_citations(answer, PASSAGES, ids=IDS) == [2]  # the marker says so
    assert find_citations(answer, PASSAGES, ids=IDS, use_markers=False) == [1]


def test_overlap_finds_copied_and_paraphrased_sentences_and_ignores_filler() -> None:
    answer = (
        "In hypersonic flow the stagnation point of a blunt body sees the highest heat transfer. "
        "Imperfections decide when thin cylindrical shells buckle under axial compression. "
        "Hope this helps with your question."
    )
    assert find_citations(answer, PASSAGES) == [1, 2]
    unrelated = "Cats sleep for most of the day and hunt at dawn and dusk."
    assert find_citations(unrelated, PASSAGES) == []
    assert find_citations("", PASSAGES) == [] and find_citations("x", []) == []


def test_threshold_and_margin_trade_precision_for_recall() -> None:
    answer = "A turbulent boundary layer forms on a plate at high Reynolds numbers."
    assert find_citations(answer, PASSAGES) == [0]
    assert find_citations(answer, PASSAGES, threshold=1.0) == []


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="threshold"):
        find_citations("a", PASSAGES, threshold=0.0)
    with pytest.raises(ValueError, match="2 ids for 3 passages"):
        find_citations("a", PASSAGES, ids=["a", "b"])
