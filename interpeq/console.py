"""What the commands write to the terminal.

Progress bars redraw themselves with carriage returns: on a terminal that is a bar, in
a log file (``interpeq calibrate ... > log``) it is thousands of frames. Bars are shown
only when asked for *and* the output is a terminal; the commands' own summaries are
plain lines either way.
"""

from __future__ import annotations


def bars_disabled(progress: bool = True) -> bool | None:
    """tqdm's ``disable``: ``True`` when not asked for, else ``None`` (tqdm then disables
    the bar by itself when its output is not a terminal)."""
    return None if progress else True
