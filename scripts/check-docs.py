#!/usr/bin/env python3
"""Check the project's documentation links, and the README's length.

Every relative Markdown link in README.md, docs/*.md and events/README.md, inline
(`[text](path#anchor)`, `[text](#anchor)`, images too) or by reference (`[ref]: path`), must
name a file or folder that exists; when it names an anchor, a heading of the target Markdown
file must produce that anchor by GitHub's rules: lower case, punctuation removed except `-`
and `_`, each space a `-`, and a repeated heading's anchor suffixed `-1`, `-2`, ...
README.md must have at most 300 lines.

Prints each broken link as file:line and exits 1 if there is any; otherwise prints a
one-line summary and exits 0. Python 3.11, standard library only.

    python3 scripts/check-docs.py
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 300

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
# [text](target) or [text](target "title"), text may hold one level of [brackets].
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]\\]|\\.|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def doc_files() -> list[Path]:
    files = [ROOT / "README.md"]
    files += sorted((ROOT / "docs").glob("*.md"))
    files.append(ROOT / "events" / "README.md")
    return [f for f in files if f.is_file()]


def prose_lines(text: str):
    """(line number, line) for each line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.split("\n"), start=1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            yield number, line
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and line.strip().strip(fence[0]) == "":
            fence = None


def inline_to_plain(text: str) -> str:
    """Rendered text of inline Markdown that holds no code span."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)       # images: alt text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)        # links: their text
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)       # reference links
    text = re.sub(r"<[^>]+>", "", text)                        # inline HTML tags
    text = re.sub(r"(\*{1,3})(\S(?:.*?\S)?)\1", r"\2", text)    # *emphasis*
    # _emphasis_, but not the underscores inside a word (snake_case)
    text = re.sub(r"(?<![A-Za-z0-9])(_{1,3})(\S(?:.*?\S)?)\1(?![A-Za-z0-9])", r"\2", text)
    return text


def heading_text_to_plain(text: str) -> str:
    """The text GitHub renders for a heading: code spans verbatim, other Markdown removed."""
    out, last = [], 0
    for m in CODE_SPAN.finditer(text):
        out.append(inline_to_plain(text[last:m.start()]))
        out.append(m.group(2).strip())
        last = m.end()
    out.append(inline_to_plain(text[last:]))
    return "".join(out)


def slug(text: str) -> str:
    """GitHub's anchor for a heading text (before duplicate suffixes)."""
    text = heading_text_to_plain(text).strip().lower()
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "-_" or ch == " " or category[0] in "LN" or category == "Mn":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path in cache:
        return cache[path]
    text = path.read_text(encoding="utf-8")
    found: set[str] = set()
    counts: dict[str, int] = {}

    def add(base: str) -> None:
        name, n = base, counts.get(base, 0)
        if n:
            name = f"{base}-{n}"
            while name in found:
                n += 1
                name = f"{base}-{n}"
        counts[base] = n + 1
        found.add(name)

    previous = ""
    for _, line in prose_lines(text):
        for m in HTML_ANCHOR.finditer(line):
            found.add(m.group(1))
        m = ATX.match(line)
        if m:
            add(slug(m.group(2) or ""))
            previous = ""
            continue
        m = SETEXT.match(line)
        if m and previous.strip() and not previous.lstrip().startswith(("|", "-", "*", "+", ">")) \
                and not re.match(r"^\s*\d+[.)]\s", previous):
            add(slug(previous.strip()))
            previous = ""
            continue
        previous = line
    cache[path] = found
    return found


def links_of(text: str):
    """(line number, target) of each link outside code."""
    for number, line in prose_lines(text):
        # Blank out code spans, keeping the columns, so links inside them are not links.
        visible = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for m in INLINE_LINK.finditer(visible):
            yield number, m.group(1)
        m = REF_DEF.match(visible)
        if m:
            yield number, m.group(1)


def check(files: list[Path]) -> tuple[list[str], int]:
    problems: list[str] = []
    cache: dict[Path, set[str]] = {}
    checked = 0
    for source in files:
        rel = source.relative_to(ROOT)
        for number, target in links_of(source.read_text(encoding="utf-8")):
            target = target.strip("<>")
            if SCHEME.match(target) or target.startswith("//"):
                continue  # an external URL (http:, mailto:, ...)
            checked += 1
            path_part, _, anchor = target.partition("#")
            path_part = unquote(path_part.split("?", 1)[0])
            anchor = unquote(anchor)
            if path_part.startswith("/"):
                resolved = ROOT / path_part.lstrip("/")
            elif path_part:
                resolved = (source.parent / path_part).resolve()
            else:
                resolved = source
            where = f"{rel}:{number}: ({target})"
            if not resolved.exists():
                problems.append(f"{where}: no such file or folder: {path_part}")
                continue
            try:
                resolved.relative_to(ROOT)
            except ValueError:
                problems.append(f"{where}: points outside the repository")
                continue
            if not anchor:
                continue
            if resolved.is_dir() or resolved.suffix.lower() not in (".md", ".markdown"):
                if not (resolved.is_file() and re.fullmatch(r"L\d+(-L\d+)?", anchor)):
                    problems.append(f"{where}: an anchor into a file that is not Markdown")
                continue
            if anchor not in anchors_of(resolved, cache):
                shown = resolved.relative_to(ROOT)
                problems.append(f"{where}: no heading in {shown} has the anchor #{anchor}")
    return problems, checked


def main() -> int:
    files = doc_files()
    problems, checked = check(files)
    readme = ROOT / "README.md"
    readme_lines = len(readme.read_text(encoding="utf-8").splitlines()) if readme.is_file() else 0
    if not readme.is_file():
        problems.append("README.md: missing")
    elif readme_lines > README_MAX_LINES:
        problems.append(f"README.md:{readme_lines}: {readme_lines} lines, more than "
                        f"{README_MAX_LINES}; move detail into docs/")
    for p in problems:
        print(p)
    if problems:
        print(f"check-docs: {len(problems)} problem(s) in {len(files)} files")
        return 1
    print(f"check-docs: {checked} relative links in {len(files)} files resolve; "
          f"README.md has {readme_lines} lines (at most {README_MAX_LINES})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
