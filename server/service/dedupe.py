"""Exactly-once accounting of (producer_id, sequence) batches.

Per producer: a watermark `w` (every sequence <= w was applied) plus the sparse set of applied
sequences above it. Set-based rather than a plain "last sequence" so a batch that was refused
(backpressure) can be resent after later ones were applied without being mistaken for a duplicate.
Sequence 0 or an empty producer id opts out of deduplication.

>>> d = SequenceDedupe()
>>> d.claim("p", 1), d.claim("p", 3), d.claim("p", 1), d.claim("p", 2), d.watermark("p")
(True, True, False, True, 3)
"""

from __future__ import annotations

MAX_SPARSE = 65_536  # past this many out-of-order sequences the oldest gap is given up (documented)


class SequenceDedupe:
    def __init__(self, max_producers: int = 100_000) -> None:
        self._watermark: dict[str, int] = {}
        self._above: dict[str, set[int]] = {}
        self._max_producers = max_producers

    def is_duplicate(self, producer_id: str, sequence: int) -> bool:
        if not producer_id or sequence == 0:
            return False
        return sequence <= self._watermark.get(producer_id, 0) or sequence in self._above.get(producer_id, ())

    def claim(self, producer_id: str, sequence: int) -> bool:
        """Mark as applied; False if it already was (a duplicate)."""
        if self.is_duplicate(producer_id, sequence):
            return False
        if not producer_id or sequence == 0:
            return True
        if producer_id not in self._watermark and len(self._watermark) >= self._max_producers:
            # Forget the producer seen least recently (dicts keep insertion order; claims re-insert).
            oldest = next(iter(self._watermark))
            del self._watermark[oldest]
            self._above.pop(oldest, None)
        w = self._watermark.pop(producer_id, 0)
        above = self._above.setdefault(producer_id, set())
        above.add(sequence)
        while w + 1 in above:
            w += 1
            above.discard(w)
        if len(above) > MAX_SPARSE:
            w = min(above)
            above.discard(w)
            while w + 1 in above:
                w += 1
                above.discard(w)
        self._watermark[producer_id] = w
        return True

    def to_dict(self) -> dict:
        return {"watermark": self._watermark, "above": {p: sorted(v) for p, v in self._above.items() if v}}

    @classmethod
    def from_dict(cls, d: dict) -> "SequenceDedupe":
        out = cls()
        out._watermark = {p: int(w) for p, w in d.get("watermark", {}).items()}
        out._above = {p: set(v) for p, v in d.get("above", {}).items()}
        return out

    def watermark(self, producer_id: str) -> int:
        return self._watermark.get(producer_id, 0)
