"""Build the report of a run folder: read it, compute the figures, draw the plots, write the files."""

from __future__ import annotations

import logging
from pathlib import Path

from heldout.report.data_checks import count_audit_findings, count_skipped, leakage_sentence
from heldout.report.load import load_run
from heldout.report.plots import (
    PLOT_DIR,
    plot_class_counts,
    plot_confusion,
    plot_learning_curves,
    plot_mistakes,
    plot_reliability,
)
from heldout.report.settings import ReportSettings
from heldout.report.summary import summarize
from heldout.report.verdict import judge, write_verdict
from heldout.report.write import REPORT_JSON, REPORT_MARKDOWN, ReportContent, write_json, write_markdown

log = logging.getLogger(__name__)


def build_report(run_dir: str | Path, settings: ReportSettings | None = None) -> Path:
    """Write ``report.md``, ``report.json`` and the plots under ``report/`` into a run folder.

    Returns the path of ``report.md``.

    Raises:
        RunFolderError: the folder is not a run folder, or it lacks validation or test predictions.
    """
    settings = settings or ReportSettings()
    run = load_run(run_dir)
    summary = summarize(run, settings)
    findings = judge(summary, settings)
    audit_counts = None if run.audit is None else count_audit_findings(run.audit)
    verdict = write_verdict(findings, leakage_sentence(audit_counts or {}))

    plot_dir = run.folder / PLOT_DIR
    plots: dict[str, Path | None] = {
        "learning_curves": None
        if run.history is None
        else plot_learning_curves(
            run.history,
            _epoch(run.metrics.get("best_epoch")),
            _epoch(run.metrics.get("stopped_epoch")),
            plot_dir / "learning_curves.png",
        ),
        "confusion_val": plot_confusion(run.val, run.classes, "validation", plot_dir / "confusion_val.png"),
        "confusion_test": plot_confusion(run.test, run.classes, "test", plot_dir / "confusion_test.png"),
        "reliability": plot_reliability(summary.calibration, plot_dir / "reliability.png"),
        "class_counts": None
        if run.manifest is None
        else plot_class_counts(run.manifest, run.classes, plot_dir / "class_counts.png"),
    }
    plots["mistakes"], unavailable = plot_mistakes(run, settings.gallery_size, plot_dir / "mistakes.png")

    content = ReportContent(
        run_name=run.folder.resolve().name,
        summary=summary,
        findings=findings,
        verdict=verdict,
        settings=settings,
        plots={
            name: None if path is None else path.relative_to(run.folder).as_posix()
            for name, path in plots.items()
        },
        audit_counts=audit_counts,
        skipped_counts=count_skipped(run.skipped),
        unavailable_gallery_images=unavailable,
        notes=run.notes + summary.notes,
    )
    write_json(content, run.folder / REPORT_JSON)
    markdown = write_markdown(content, run.folder / REPORT_MARKDOWN)
    log.info("Wrote %s", markdown)
    return markdown


def _epoch(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
