"""The content hash migrate-store compares between the two stores."""

from __future__ import annotations

import pytest

from nexusmail.storage.store_move import MoveError, _Digest


def digest(*rows: tuple[object, ...]) -> str:
    d = _Digest()
    for row in rows:
        d.add(row)
    return d.hexdigest()


def test_the_hash_ignores_row_order_but_not_repeats() -> None:
    """Text sorts differently on the two stores, so order must not matter; a row copied
    twice must still show."""
    a, b = (1, "ș", b"\x00"), (2, None, b"")
    assert digest(a, b) == digest(b, a)
    assert digest(a, b) != digest(a, b, b)
    assert digest(a, a) != digest()


@pytest.mark.parametrize(("left", "right"), [
    ((1,), ("1",)), ((None,), ("",)), (("ab", "c"), ("a", "bc")), ((b"x",), ("x",)),
    ((True,), (2,)),
])
def test_values_are_hashed_with_their_type_and_bounds(
        left: tuple[object, ...], right: tuple[object, ...]) -> None:
    """A number and its text, NULL and '', or a value split across columns differ."""
    assert digest(left) != digest(right)


def test_a_value_of_an_unexpected_type_stops_the_move() -> None:
    """A value neither store gives (a date object) is an error, not a silent pass."""
    with pytest.raises(MoveError):
        digest((object(),))
