"""Reports: figures (congruity heatmaps, equivalence curves) and logging (W&B / CSV)."""

from interpeq.report.plots import congruity_heatmap
from interpeq.report.summary_plots import equivalence_curves, group_matrix_plot
from interpeq.report.wandb import (
    LOGGER_KINDS,
    SafeCSVLogger,
    SafeWandbLogger,
    log_image,
    log_metrics,
    log_summary,
    log_table,
    make_logger,
    member_tags,
    offline_runs,
    read_offline_run,
    safe_call,
    wandb_mode,
)

__all__ = [
    "LOGGER_KINDS",
    "SafeCSVLogger",
    "SafeWandbLogger",
    "congruity_heatmap",
    "equivalence_curves",
    "group_matrix_plot",
    "log_image",
    "log_metrics",
    "log_summary",
    "log_table",
    "make_logger",
    "member_tags",
    "offline_runs",
    "read_offline_run",
    "safe_call",
    "wandb_mode",
]
