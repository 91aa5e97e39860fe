"""python -m protocol._codegen --specs DIR [--check]

Generates protocol/messages/*.py and protocol/errors.py from the Kafka message
specs in DIR (and DIR/errors.tsv). With --check nothing is written: the output
is regenerated in memory and compared with the files on disk; the exit status
is 1 and the differing, missing or extra files are listed if they differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocol._codegen.render import render_errors, render_messages
from protocol._codegen.spec import SpecError, load_errors, load_specs, snapshot_id

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_SPECS = PACKAGE_DIR.parents[1] / "shared" / "kafka-message-specs"


def generate(specs_dir: Path) -> dict[Path, str]:
    """All generated files, keyed by path relative to the protocol package."""
    snapshot = snapshot_id(specs_dir)
    specs = load_specs(specs_dir)
    files = {
        Path("messages") / name: text for name, text in render_messages(specs, snapshot).items()
    }
    files[Path("errors.py")] = render_errors(load_errors(specs_dir / "errors.tsv"), snapshot)
    return files


def existing(package_dir: Path) -> set[Path]:
    """Files on disk that the generator owns."""
    found = {p.relative_to(package_dir) for p in (package_dir / "messages").glob("*.py")}
    if (package_dir / "errors.py").exists():
        found.add(Path("errors.py"))
    return found


def check(files: dict[Path, str], package_dir: Path) -> list[str]:
    problems: list[str] = []
    for rel, text in sorted(files.items()):
        path = package_dir / rel
        if not path.exists():
            problems.append(f"missing: {rel}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {rel}")
    for rel in sorted(existing(package_dir) - set(files)):
        problems.append(f"extra: {rel}")
    return problems


def write(files: dict[Path, str], package_dir: Path) -> None:
    (package_dir / "messages").mkdir(exist_ok=True)
    for rel in existing(package_dir) - set(files):
        (package_dir / rel).unlink()
    for rel, text in files.items():
        path = package_dir / rel
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol._codegen", description=__doc__)
    parser.add_argument("--specs", type=Path, default=DEFAULT_SPECS, help="spec directory")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        files = generate(args.specs)
    except (SpecError, OSError, KeyError) as exc:
        print(f"codegen failed: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = check(files, args.out)
        for line in problems:
            print(line)
        if problems:
            print(f"{len(problems)} generated file(s) out of date; rerun without --check")
            return 1
        print(f"{len(files)} generated files up to date")
        return 0
    write(files, args.out)
    print(f"wrote {len(files)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
