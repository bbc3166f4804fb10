"""The view page (``moviebarcode view``): a barcode to explore, in one self-contained HTML
file made from the store alone (no movie, no ffmpeg, no server).

The page shows the barcode in every mode the store's results allow, and for the column
under the pointer its time, frame number, thumbnail and colours; it zooms to a time range,
shows the palette of what is shown, and exports the view as PNG and the range's palettes
as JSON. Its script, style and template are package data (``assets/``), inlined with the
data: times, clusterings and statistics (``payload``), thumbnails in sprite sheets sized
to a byte budget (``sprites``), all assembled by ``page`` and written by ``build``.
"""

from moviebarcode.view.build import ViewResult, build_view, default_page_path
from moviebarcode.view.options import ViewOptions

__all__ = ["ViewOptions", "ViewResult", "build_view", "default_page_path"]
