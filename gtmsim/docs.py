"""Documentation drawn from the code itself: the tagged modelling assumptions."""

from __future__ import annotations

import re
from importlib import resources

TAG = "# ASSUMPTION:"


def tagged_assumptions() -> list[tuple[str, str]]:
    """Every `# ASSUMPTION:` comment in the package as (module:line, text), continuation lines joined."""
    found = []
    package = resources.files("gtmsim")
    for entry in sorted(package.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".py"):
            continue
        lines = entry.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if not line.strip().startswith(TAG):
                continue
            text = line.split(TAG, 1)[1].strip()
            j = i + 1
            while j < len(lines) and re.match(r"\s*# (?!ASSUMPTION)", lines[j]):
                text += " " + lines[j].strip().removeprefix("# ").strip()
                j += 1
            found.append((f"gtmsim/{entry.name}:{i + 1}", text))
    return found
