from hypothesis import given, strategies as st

from driftd.server.service.dedupe import SequenceDedupe


@given(st.lists(st.integers(min_value=1, max_value=60), max_size=200), st.sampled_from(["p", "q"]))
def test_each_sequence_claimed_exactly_once_in_any_order(sequences, producer):
    d = SequenceDedupe()
    claimed = [s for s in sequences if d.claim(producer, s)]
    assert sorted(claimed) == sorted(set(sequences))
    assert all(d.is_duplicate(producer, s) for s in sequences)
    # the watermark is the longest run 1..w that was claimed
    w = 0
    while w + 1 in set(sequences):
        w += 1
    assert d.watermark(producer) == w


def test_zero_sequence_or_empty_producer_opt_out():
    d = SequenceDedupe()
    assert d.claim("p", 0) and d.claim("p", 0)
    assert d.claim("", 5) and d.claim("", 5)


def test_producer_table_is_bounded():
    d = SequenceDedupe(max_producers=3)
    for p in "abcd":
        d.claim(p, 1)
    assert not d.is_duplicate("a", 1)  # the oldest producer was forgotten
    assert d.is_duplicate("d", 1)
