"""Progress bars go to terminals only: a log file gets no carriage-return frames."""

import io

from tqdm.auto import tqdm

from interpeq.console import bars_disabled


def test_bars_only_on_a_terminal():
    log = io.StringIO()  # not a terminal, like `interpeq calibrate ... > log`
    for _ in tqdm(range(50), file=log, disable=bars_disabled(True)):
        pass
    assert log.getvalue() == ""
    assert bars_disabled(False) is True and bars_disabled(True) is None


def test_a_command_into_a_file_writes_no_frames(tmp_path):
    import subprocess
    import sys

    code = (
        "from tqdm.auto import tqdm; from interpeq.console import bars_disabled\n"
        "for _ in tqdm(range(20), disable=bars_disabled(True)): pass\nprint('done')"
    )
    with open(tmp_path / "log", "w") as fh:
        subprocess.run([sys.executable, "-c", code], stdout=fh, stderr=fh, check=True)
    text = (tmp_path / "log").read_text()
    assert text == "done\n" and "\r" not in text
