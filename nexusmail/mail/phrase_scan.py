"""A table of phrase groups compiled into one pattern that tries, at each word start,
only the phrases that can begin with the letter found there.

Python's regular-expression engine tries the branches of an alternation one by one. A
branch that opens with a literal letter is passed over at once when the text holds
another letter, but a named group opens with a marker, not a letter: with the reply
reader's table (a few hundred phrases in named groups) every word start entered every
group, and that scan was a fifth of the reader's time. Here the same phrases are
regrouped under their first letter: the pattern is `\\b(?:a(?:...)|b(?:...)|...)`, where
the branch of letter "n" holds, in table order, every phrase that can begin with "n",
without that letter, inside a group named `<group>__n`. The matches are the same as
those of the flat alternation `\\b(?=[a-z])(?:(?P<group>(?:p1|p2|...)\\b)|...)`: where a
letter starts a word, only the phrases that can begin with that letter could match
there, and they are tried in the same order.

The first letter is worked out from the phrase's text, which must open with a lower-case
letter or a non-capturing group of such openings, possibly optional ("(?:i )?don'?t
know"). Any other opening (a class, an escape, a quantified letter) is refused when the
table is compiled, naming the phrase, rather than being read wrongly.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

__all__ = ["compile_phrase_groups", "group_of"]

_LETTERS = string.ascii_lowercase
_GROUP_SEPARATOR = "__"
_QUANTIFIERS = frozenset("?*+{")


def compile_phrase_groups(groups: Sequence[tuple[str, Sequence[str]]]) -> re.Pattern[str]:
    """One pattern for `groups` ((name, phrases) in priority order), each phrase ending
    at a word boundary; `group_of(match.lastgroup)` names the group that matched."""
    branches: list[str] = []
    for letter in _LETTERS:
        named: list[str] = []
        for name, phrases in groups:
            if _GROUP_SEPARATOR in name:
                raise ValueError(f"phrase group name {name!r} contains {_GROUP_SEPARATOR!r}")
            rests = [rest for phrase in phrases if (rest := _after(phrase, letter)) is not None]
            if rests:
                named.append(f"(?P<{name}{_GROUP_SEPARATOR}{letter}>(?:{'|'.join(rests)})\\b)")
        if named:
            branches.append(f"{letter}(?:{'|'.join(named)})")
    return re.compile(r"\b(?:" + "|".join(branches) + ")")


def group_of(lastgroup: str) -> str:
    """The table's group name of a match's `lastgroup`."""
    return lastgroup.partition(_GROUP_SEPARATOR)[0]


def _after(pattern: str, letter: str) -> str | None:
    """A pattern for what follows `letter` in a match of `pattern` that begins with it,
    or None when no match of `pattern` begins with it."""
    rests = [rest for branch in _branches(pattern) if (rest := _after_branch(branch, letter))
             is not None]
    if not rests:
        return None
    return rests[0] if len(rests) == 1 else "(?:" + "|".join(rests) + ")"


def _after_branch(branch: str, letter: str) -> str | None:
    if branch and branch[0] in _LETTERS and not (len(branch) > 1 and branch[1] in _QUANTIFIERS):
        return branch[1:] if branch[0] == letter else None
    if branch.startswith("(?:"):
        close = _closing_parenthesis(branch)
        inside, after = branch[3:close], branch[close + 1:]
        if after.startswith("?"):
            # Greedy: the group is tried first, then the rest without it; kept in that order.
            rests = [rest for rest in (_joined(_after(inside, letter), after[1:]),
                                       _after_branch(after[1:], letter)) if rest is not None]
            if not rests:
                return None
            return rests[0] if len(rests) == 1 else "(?:" + "|".join(rests) + ")"
        if not after or after[0] not in _QUANTIFIERS:
            return _joined(_after(inside, letter), after)
    raise ValueError(f"cannot tell the first letter of the phrase {branch!r}: open it with"
                     " a lower-case letter or a group of such openings")


def _joined(rest: str | None, after: str) -> str | None:
    return None if rest is None else rest + after


def _branches(pattern: str) -> list[str]:
    """`pattern` split at its top-level `|`."""
    branches: list[str] = []
    depth = start = 0
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            position += 2
            continue
        if char == "[":
            position = _class_end(pattern, position)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            branches.append(pattern[start:position])
            start = position + 1
        position += 1
    branches.append(pattern[start:])
    return branches


def _closing_parenthesis(pattern: str) -> int:
    """Offset of the `)` closing the group opened at offset 0."""
    depth = 0
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            position += 2
            continue
        if char == "[":
            position = _class_end(pattern, position)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    raise ValueError(f"unbalanced group in the phrase {pattern!r}")


def _class_end(pattern: str, start: int) -> int:
    """Offset just after the character class opened at `start` ("[^]x]" included)."""
    position = start + 1
    if pattern[position:position + 1] == "^":
        position += 1
    if pattern[position:position + 1] == "]":
        position += 1
    while position < len(pattern) and pattern[position] != "]":
        position += 2 if pattern[position] == "\\" else 1
    return position + 1
