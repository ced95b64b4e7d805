"""The page's front-end assets, installed from the npm registry for machines without a CDN.

Solara serves its page's JavaScript and CSS from a local cache
(`solara.server.settings.assets.proxy_cache_dir`) and fetches what is missing from a
public CDN on first use. Its wheel ships some of them; the Vuetify app bundle
(`@widgetti/solara-vuetify3-app`, ~18 MB), RequireJS, Font Awesome and KaTeX (for Markdown)
are fetched. On a machine that reaches the npm
registry but no CDN (CI, a firewalled laptop), `python -m gtmsim.app.assets` puts those
packages into the cache with `npm pack`, once; `make install-test` does it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

_BUNDLE = re.compile(r"\{\{cdn\}\}/(@widgetti/solara-vuetify(3?)-app@[0-9][\w.-]*)/")
_KATEX = re.compile(r"katex@[0-9][\w.-]*")  # Solara's Markdown loads KaTeX for formulas
_SPEC = re.compile(r"(?:@[\w-]+/)?[\w.-]+@[0-9][\w.-]*")  # an npm package at a version
_CDN_PACKAGE = re.compile(r"\{\{cdn\}\}/(" + _SPEC.pattern + r")/")


def cache_dir() -> Path:
    from solara.server import settings

    return Path(settings.assets.proxy_cache_dir)


def bundle() -> str:
    """The npm package (name@version) of the Vuetify app this Solara's page loads."""
    import ipyvue
    import solara.server

    template = Path(solara.server.__file__).parent / "templates" / "solara.html.j2"
    vue3 = ipyvue.__version__.startswith("3")
    found = {flavour == "3": spec for spec, flavour in _BUNDLE.findall(template.read_text())}
    if vue3 not in found:
        raise RuntimeError(f"cannot find the Vuetify app bundle in {template}")
    return found[vue3]


def needed() -> list[str]:
    """The npm packages (name@version) the page loads that Solara's wheel does not ship: the
    Vuetify app bundle, the other packages its page template loads from the CDN (RequireJS),
    Font Awesome (Solara's icon font) and KaTeX."""
    import solara.server
    from solara.components import markdown
    from solara.server import settings

    template = (Path(solara.server.__file__).parent / "templates" / "solara.html.j2").read_text()
    others = {spec for spec in _CDN_PACKAGE.findall(template) if not spec.startswith("@widgetti/")}
    icons = settings.assets.fontawesome_path.strip("/").split("/")[0]
    if _SPEC.fullmatch(icons):
        others.add(icons)
    others |= set(_KATEX.findall(Path(markdown.__file__).read_text()))
    return [bundle(), *sorted(others)]


def missing() -> list[str]:
    """The packages the page needs that are not in Solara's cache."""
    return [spec for spec in needed() if not (cache_dir() / spec / "package.json").exists()]


def install(*, quiet: bool = False) -> list[Path]:
    """Put each missing package into Solara's cache with `npm pack`; the folders written.

    Raises:
        RuntimeError: npm is not installed or cannot fetch the package.
    """
    written = []
    for spec in missing():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(f"npm is needed to fetch {spec} (apt-get install npm), or a "
                               "network that reaches the CDN Solara uses")
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", tmp],
                                  capture_output=True, text=True, timeout=600, check=False)
            tgz = next(Path(tmp).glob("*.tgz"), None)
            if done.returncode or tgz is None:
                raise RuntimeError(f"npm pack {spec} failed: {done.stderr.strip()[-500:]}")
            target = cache_dir() / spec
            unpacked = Path(tmp) / "unpacked"
            with tarfile.open(tgz) as tar:
                tar.extractall(unpacked, filter="data")
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.with_name(target.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(unpacked / "package", staging)
            staging.rename(target)  # whole or not at all
        written.append(target)
        if not quiet:
            print(f"gtmsim: installed {spec} into {target}")
    return written


def main() -> int:
    try:
        written = install()
    except RuntimeError as exc:
        print(f"gtmsim: {exc}", file=sys.stderr)
        return 1
    if not written:
        print(f"gtmsim: the page's assets are installed (in {cache_dir()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
