"""Transcripts keep the images a cell displayed: saved beside the Markdown, linked under it."""

from __future__ import annotations

from pathlib import Path

from pytest_runbook.document import parse
from pytest_runbook.model import Result
from pytest_runbook.transcript import Transcript

DOC = """\
# Plot

- a list item holding the cell:

  ```sh {name=plot/1}
  make-plot
  ```
"""


def test_images_are_written_beside_the_transcript_and_linked_under_their_cell(
    tmp_path: Path,
) -> None:
    document = parse(DOC, "docs/plot.md")
    transcript = Transcript(document)
    displays = (("image/png", b"\x89PNG-1"), ("text/html", b"<b>"), ("image/svg+xml", b"<svg/>"))
    result = Result(output="drawn\n", status=0, duration=0.5, displays=displays)
    transcript.record(document.cells[0], [result], 0.5)

    transcript.write(tmp_path / "docs" / "plot.md")

    written = tmp_path / "docs"
    # The name's "/" would make a directory: it is replaced.
    assert (written / "plot.md.plot-1.1.png").read_bytes() == b"\x89PNG-1"
    assert (written / "plot.md.plot-1.2.svg").read_bytes() == b"<svg/>"
    assert sorted(p.name for p in written.iterdir()) == [
        "plot.md",
        "plot.md.plot-1.1.png",
        "plot.md.plot-1.2.svg",
    ]
    assert (written / "plot.md").read_text(encoding="utf-8") == (
        "# Plot\n\n- a list item holding the cell:\n\n"
        "  ```sh {name=plot/1}\n  make-plot\n  ```\n\n"
        "  <!-- runbook transcript: plot/1: exit 0 in 0.50 s -->\n"
        "  ```output\n  drawn\n  ```\n\n"
        "  ![plot/1](plot.md.plot-1.1.png)\n\n"
        "  ![plot/1](plot.md.plot-1.2.svg)\n"
    )
