"""Run by tests/test_metrics_kalmus.py under an interpreter where ``kalmus`` is installed (it
is not one of moviebarcode's dependencies): KALMUS's own colour of each frame, per metric, as
JSON, through ``Barcode.get_color_from_frame`` and its GrabCut foreground.

Usage: python kalmus_metrics.py frames.npy  (uint8, (n, h, w, 3) RGB)
"""

import json
import sys
import warnings
from types import SimpleNamespace

import numpy as np

warnings.simplefilter("ignore")
import cv2  # noqa: E402
import skimage.future  # noqa: E402
import skimage.graph  # noqa: E402

# kalmus 1.3.14 imports skimage.future.graph, which scikit-image 0.20 moved to skimage.graph
# (and no older scikit-image installs on Python 3.11): the same functions, by their new name.
sys.modules.setdefault("skimage.future.graph", skimage.graph)
skimage.future.graph = skimage.graph
from kalmus.barcodes.Barcode import Barcode, foreback_segmentation  # noqa: E402

frames = np.load(sys.argv[1])
out = {}
for metric in ("Average", "Median", "Mode", "Brightest"):
    me = SimpleNamespace(color_metric=metric)
    out[metric] = [np.asarray(Barcode.get_color_from_frame(me, f)).tolist() for f in frames]
me = SimpleNamespace(color_metric="Average")  # BrightnessBarcode: the metric of the grey frame
out["Brightness"] = [
    float(np.ravel(Barcode.get_color_from_frame(me, cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)))[0])
    for f in frames
]
me = SimpleNamespace(color_metric="Median")
out["ForegroundMedian"] = [
    np.asarray(
        Barcode.get_color_from_frame(me, foreback_segmentation(f)[0].reshape(-1, 1, 3))
    ).tolist()
    for f in frames
]
print(json.dumps(out))
