"""The store of finished work: entries kept by key, verified before they are reused, pruned on request.

Every batch job (funnel.batch) keeps what it finished in a store beside its
outputs, ``<output folder>/.store/<name>-<key><suffix>`` (``seed5-<key>.nc``,
``sim3-<key>.json``, ``centered-<key>.json``), where the key hashes everything
that determines the entry (:func:`fit_key`). Beside each entry,
``<entry>.sha256`` records (as JSON) the key and the SHA-256 of the entry's bytes,
written after the entry itself.

* **Verified before reuse.** An entry is reused only when its recorded key is
  the one asked for, its bytes have the recorded checksum, and the caller's
  reader accepts it (a trace's own attributes must name the same seed,
  sampler, form, chains, draws and key). Anything else (a file of another
  seed or setting put in its place, damaged bytes, an entry without a
  checksum, as a job killed between the two writes leaves) is discarded with
  a logged warning and computed again.
* **Outputs are copies.** An output is a copy of its entry (:func:`copy_out`),
  never a hard link, so damage to one never reaches the other; the price is
  the disk space of the copy.
* **Entries of other settings are kept**, so going back to a setting reuses
  its work. Nothing removes them but an explicit prune, run while no workflow
  runs::

      python -m funnel.store prune [--dry-run] [FOLDER]   # FOLDER: results (default)

  (with ``PYTHONPATH=workflow``). It keeps, in every ``.store`` folder under
  FOLDER, the entries that an output beside the store is a copy of (same
  name, same checksum), and removes the others, their checksum files, and the
  temporaries of killed writes.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .io import atomic_path, sha256_file

STORE = ".store"
CHECKSUM = ".sha256"
# <name>-<16 hex digits of the key><suffix>
ENTRY = re.compile(r"^(?P<name>.+)-(?P<key>[0-9a-f]{16})(?P<suffix>\.[^.]+)$")

Log = Callable[[str], None]


class StoreMismatch(ValueError):
    """A store entry that is not what its name says (another key, seed or setting; damaged bytes)."""


def fit_key(parts: Mapping[str, Any]) -> str:
    """A short hash of everything that determines an entry (a seed's draws, a record)."""
    text = json.dumps(dict(parts), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of the packages whose code makes the draws."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("pymc", "pytensor", "nutpie", "numpy", "numba"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are installed
            out[name] = "absent"
    return out


def check_attrs(attrs: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """Raise :class:`StoreMismatch` naming every attribute that differs from ``expected`` (compared as text)."""
    wrong = [
        f"{name} {attrs.get(name)}, not {value}"
        for name, value in expected.items()
        if str(attrs.get(name)) != str(value)
    ]
    if wrong:
        raise StoreMismatch(f"it records {'; '.join(wrong)}")


def checksum_path(entry: Path) -> Path:
    return entry.with_name(entry.name + CHECKSUM)


def copy_out(source: str | Path, target: str | Path) -> None:
    """Place a copy of ``source`` at ``target`` atomically, its mtime now (newer than the job's inputs).

    A copy, not a hard link: an output and its store entry never share damage.
    Written through a uniquely named temporary that is renamed into place (or
    removed on failure), so nothing is left beside ``target``, whatever was there.
    """
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


@dataclass(frozen=True)
class Store:
    """The entries of one store folder (``<output folder>/.store``)."""

    folder: Path
    log: Log = print

    @classmethod
    def beside(cls, output: str | Path, log: Log = print) -> Store:
        return cls(Path(output).parent / STORE, log)

    def path(self, name: str, key: str, suffix: str) -> Path:
        return self.folder / f"{name}-{key}{suffix}"

    def put(self, name: str, key: str, suffix: str, write: Callable[[Path], None]) -> Path:
        """Write an entry with ``write(path)`` (which must write atomically), then its key and checksum."""
        path = self.path(name, key, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        with atomic_path(checksum_path(path)) as tmp:
            tmp.write_text(json.dumps({"key": key, "sha256": sha256_file(path)}) + "\n")
        return path

    def verify(self, path: Path, key: str) -> None:
        """Raise :class:`StoreMismatch` unless ``path``'s recorded key is ``key`` and its bytes the recorded checksum."""
        try:
            recorded = json.loads(checksum_path(path).read_text())
        except (OSError, ValueError) as error:
            raise StoreMismatch(f"no readable checksum ({type(error).__name__})") from error
        if recorded.get("key") != key:
            raise StoreMismatch(f"its checksum file records key {recorded.get('key')!r}, not {key!r}")
        actual = sha256_file(path)
        if actual != recorded.get("sha256"):
            raise StoreMismatch(
                f"its bytes have SHA-256 {actual[:12]}..., not the {str(recorded.get('sha256'))[:12]}... recorded"
            )

    def load(self, name: str, key: str, suffix: str, read: Callable[[Path], Any]) -> Any | None:
        """The entry read by ``read(path)``, verified (:meth:`verify`); None if absent.

        An entry that fails verification or that ``read`` refuses (any exception:
        a reader raises :class:`StoreMismatch` for wrong attributes) is
        discarded with a logged warning, so the caller computes it again.
        """
        path = self.path(name, key, suffix)
        if not path.is_file():
            return None
        try:
            self.verify(path, key)
            return read(path)
        except Exception as error:  # noqa: BLE001 - whatever is wrong with it, it is computed again
            self.log(
                f"WARNING: stored {path} unreadable or not what its name says ({error}); discarded, computing it again"
            )
            self.discard(path)
            return None

    def discard(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        checksum_path(path).unlink(missing_ok=True)

    def clean(self, names: Iterable[str], outputs: Path | None = None) -> list[Path]:
        """Remove the temporaries of killed writes of ``names`` (in the store and the outputs' folder).

        Only the given names are touched, so jobs sharing a folder never remove
        each other's files; entries of other keys are kept (see :func:`prune`).
        """
        removed = []
        for folder in (self.folder, outputs if outputs is not None else self.folder.parent):
            if not folder.is_dir():
                continue
            for name in names:
                removed += folder.glob(f".{name}[.-]*.tmp")
        for path in removed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            self.log(f"removed stale {path}")
        return removed


def prune(root: str | Path = "results", dry_run: bool = False, log: Log = print) -> list[Path]:
    """Remove the store entries that no output is a copy of (see the module docstring); return them."""
    removed: list[Path] = []
    for store in sorted(Path(root).rglob(STORE)):
        if not store.is_dir():
            continue
        for path in sorted(store.iterdir()):
            if path.name.endswith(CHECKSUM):
                if not path.with_name(path.name[: -len(CHECKSUM)]).exists():
                    removed.append(path)  # the checksum of an entry already gone
                continue
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                removed.append(path)
                continue
            match = ENTRY.match(path.name)
            if match is None:
                continue  # not ours: left alone
            output = store.parent / f"{match['name']}{match['suffix']}"
            try:
                recorded = json.loads(checksum_path(path).read_text()).get("sha256")
                in_use = output.is_file() and sha256_file(output) == recorded
            except (OSError, ValueError):
                in_use = False
            if not in_use:
                removed += [path, *([checksum_path(path)] if checksum_path(path).exists() else [])]
    for path in removed:
        log(f"{'would remove' if dry_run else 'removed'} {path}")
        if not dry_run:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m funnel.store", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("prune", help="remove store entries that no current output is a copy of")
    command.add_argument(
        "folder", nargs="?", default="results", help="where to look for .store folders (default: results)"
    )
    command.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    args = parser.parse_args(argv)
    if not Path(args.folder).is_dir():
        print(f"error: {args.folder} is not a folder; give the results folder of a run", file=sys.stderr)
        return 2
    removed = prune(args.folder, dry_run=args.dry_run)
    print(f"{len(removed)} file(s) {'would be ' if args.dry_run else ''}removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
