"""Measure the reports stage on every real PTB-XL report in ../shared/data/real/.

Prints: language distribution, share of German (and Swedish) reports the glossary covers fully,
label agreement (diagnostic statements per code, and the form/rhythm statements PTB-XL derived
from the report text), records whose labels a reviewer edited (reported separately), crashes and
throughput. `--check` exits 1 if a target is missed, for CI.

    .venv/bin/python benchmarks/bench_reports.py [--data-dir DIR] [--check]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import pandas as pd

from ecg_instruct.reports.fidelity import (
    DEFAULT_MIN_LIKELIHOOD,
    agreement_markdown,
    default_phrases,
    label_agreement,
    overall_agreement,
    parse_scp_codes,
    read_scp_statements,
    text_derived_codes,
)
from ecg_instruct.reports.language import detect_language
from ecg_instruct.reports.translate import GlossaryTranslator, Translation, split_reviewer_edit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO.parent / "shared" / "data" / "real" / "ptb-xl"
HOLDOUT_MODULUS = 5  # ecg_id % 5 == 0: the German reports held out while the glossary was built


def _translate_all(db: pd.DataFrame) -> tuple[pd.DataFrame, int, float]:
    translator = GlossaryTranslator()
    translator.translate("sinusrhythmux", "de")  # load glossary and typo index outside the timing
    languages, results, crashes = [], [], 0
    start = time.perf_counter()
    for report in db["report"]:
        try:
            language = detect_language(report)
            result = translator.translate(report, language)
        except Exception as exc:  # noqa: BLE001 - counting crashes is the point
            crashes += 1
            print(f"CRASH on {report!r}: {exc!r}", file=sys.stderr)
            language, result = "crash", Translation("", 0.0, ())
        languages.append(language)
        results.append(result)
    elapsed = time.perf_counter() - start
    out = db.copy()
    out["language"] = languages
    out["english"] = [r.text for r in results]
    out["coverage"] = [r.coverage for r in results]
    out["untranslated"] = [r.untranslated for r in results]
    out["edited"] = out["report"].map(lambda r: split_reviewer_edit(r)[1] is not None)
    out["codes"] = out["scp_codes"].map(parse_scp_codes)
    return out, crashes, len(db) / elapsed


def _coverage_lines(frame: pd.DataFrame) -> tuple[list[str], float]:
    lines = []
    german_full = float("nan")
    for language in ("de", "sv"):
        subset = frame[frame["language"] == language]
        if subset.empty:
            continue
        full = float((subset["coverage"] == 1.0).mean())
        held = subset[subset.index % HOLDOUT_MODULUS == 0]
        held_full = float((held["coverage"] == 1.0).mean()) if len(held) else float("nan")
        lines.append(
            f"| {language} | {len(subset)} | {full:.2%} | {subset['coverage'].mean():.4f} | "
            f"{held_full:.2%} (n={len(held)}) |"
        )
        if language == "de":
            german_full = full
    return lines, german_full


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--min-likelihood", type=float, default=DEFAULT_MIN_LIKELIHOOD)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    csv = args.data_dir / "ptbxl_database_excerpt.csv"
    if not csv.exists():
        print(f"{csv}: not found (needs ../shared/data/real/ptb-xl)", file=sys.stderr)
        return 2
    db = pd.read_csv(csv, index_col="ecg_id")
    statements = read_scp_statements(args.data_dir / "scp_statements.csv")
    frame, crashes, rate = _translate_all(db)

    print(f"# Reports benchmark: {len(frame)} real PTB-XL reports ({csv.name})\n")
    print(f"glossary {GlossaryTranslator().version}, phrase matcher {default_phrases().version}, "
          f"min_likelihood {args.min_likelihood:g}\n")  # fmt: skip
    counts = collections.Counter(frame["language"])
    print("## Language\n\n| language | reports | share |\n|---|---:|---:|")
    for language, n in counts.most_common():
        print(f"| {language} | {n} | {n / len(frame):.1%} |")

    lines, german_full = _coverage_lines(frame)
    print("\n## Glossary coverage\n")
    print("| language | reports | fully covered | mean coverage | held-out ecg_id%5==0 |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(lines))
    left = collections.Counter(
        t.lower() for u in frame.loc[frame["language"] == "de", "untranslated"] for t in u
    )
    print(f"\nUntranslated German tokens (top 15): {left.most_common(15)}")

    plain = frame[~frame["edited"]]
    print("\n## Label agreement (records without a reviewer edit)\n")
    print("| report language | records | diagnostic | form+rhythm from text |")
    print("|---|---:|---:|---:|")
    results = {}
    for language in ("de", "en", "sv"):
        subset = plain[plain["language"] == language]
        diag = label_agreement(
            list(subset["english"]), list(subset["codes"]), statements, args.min_likelihood
        )
        text = label_agreement(
            list(subset["english"]),
            [text_derived_codes(c, statements) for c in subset["codes"]],
            statements,
        )
        results[language] = (diag, text)
        print(f"| {language} | {len(subset)} | {overall_agreement(diag):.1%} | "
              f"{overall_agreement(text, ['form', 'rhythm']):.1%} |")  # fmt: skip
    edited = frame[frame["edited"]]
    edited_table = label_agreement(
        list(edited["english"]), list(edited["codes"]), statements, args.min_likelihood
    )
    print(f"| edited by a reviewer (all languages) | {len(edited)} | "
          f"{overall_agreement(edited_table):.1%} | - |")  # fmt: skip
    untranslated = label_agreement(
        list(plain.loc[plain["language"] == "de", "report"]),
        list(plain.loc[plain["language"] == "de", "codes"]),
        statements,
        args.min_likelihood,
    )
    print(f"| de, German text before translation | - | {overall_agreement(untranslated):.1%} | - |")

    print("\n### Per code, German reports translated to English\n")
    print(agreement_markdown(results["de"][0]))

    print(f"\n## Robustness and speed\n\ncrashes: {crashes}\n"
          f"throughput: {rate:,.0f} reports/s (language ID + translation, one core)")  # fmt: skip

    text_de = overall_agreement(results["de"][1], ["form", "rhythm"])
    targets = {
        ">= 99 % of German reports fully covered": german_full >= 0.99,
        ">= 95 % agreement, text-derived statements, German->English": text_de >= 0.95,
        "zero crashes": crashes == 0,
    }
    print("\n## Targets\n")
    for name, ok in targets.items():
        print(f"- {'PASS' if ok else 'FAIL'}: {name}")
    return 1 if args.check and not all(targets.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
