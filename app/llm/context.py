"""The text format that carries retrieved passages to a provider in the system prompt.

The chat service writes it; every model reads it as plain instructions; the offline
``local`` provider parses it back, since the system prompt is all a provider receives::

    system = system_prompt_with_context(passages)     # SYSTEM_PROMPT + the block
    ...
    parse_context(system) == passages                  # in the local provider

The block is unambiguous whatever the passages contain: it opens and closes with the lines
``<passages>`` and ``</passages>``; each passage has a header line ``[n] (filename)``; and
every line of a passage's text is indented by four spaces, so no text can look like a
header or the closing line. A filename's line breaks become spaces (the only loss).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

SYSTEM_PROMPT = (
    "You are InsightHub, the assistant of a team workspace. Answer clearly and concisely. "
    "When passages from the workspace's documents are provided, base your answer on them "
    "and do not state facts they do not contain."
)

CONTEXT_INSTRUCTION = (
    "Passages from the workspace's documents follow, each numbered and named after its "
    "document. Cite the passages you use by their number in square brackets, like [1] or "
    "[2][3]. If they do not contain the answer, say so."
)

OPEN_TAG = "<passages>"
CLOSE_TAG = "</passages>"
_INDENT = "    "
_HEADER = re.compile(r"\[(\d+)\] \((.*)\)\Z")


@dataclass(frozen=True, slots=True)
class Passage:
    index: int
    filename: str
    text: str


def format_context(passages: Sequence[Passage]) -> str:
    """The block to append to the system prompt; an empty string without passages."""
    if not passages:
        return ""
    lines = [CONTEXT_INSTRUCTION, OPEN_TAG]
    for passage in passages:
        filename = " ".join(passage.filename.splitlines()) or "untitled"
        lines.append(f"[{passage.index}] ({filename})")
        lines.extend(_INDENT + line for line in passage.text.split("\n"))
    lines.append(CLOSE_TAG)
    return "\n".join(lines)


def system_prompt_with_context(passages: Sequence[Passage], base: str = SYSTEM_PROMPT) -> str:
    """``base``, then the passages' block when there are any."""
    block = format_context(passages)
    return f"{base}\n\n{block}" if block else base


def parse_context(system_text: str) -> list[Passage]:
    """The passages of the last complete block in ``system_text``; [] when there is none.

    A block that does not follow the format (a stray line between passages, a missing
    closing line) is ignored rather than half-read.
    """
    found: list[Passage] = []
    block: list[Passage] | None = None  # the passages of the block being read
    header: tuple[int, str] | None = None  # the passage being read: index, filename
    body: list[str] = []
    for line in system_text.split("\n"):
        if line == OPEN_TAG:
            block, header, body = [], None, []
            continue
        if block is None:
            continue
        if line.startswith(_INDENT) and header is not None:
            body.append(line[len(_INDENT) :])
            continue
        if header is not None:
            block.append(Passage(header[0], header[1], "\n".join(body)))
            header, body = None, []
        if line == CLOSE_TAG:
            found, block = block, None
        elif match := _HEADER.match(line):
            header = (int(match.group(1)), match.group(2))
        else:
            block = None  # not our format: drop this block
    return found
