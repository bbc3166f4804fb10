"""Run by tests/test_compare.py under an interpreter where ``kalmus`` is installed (it is not
one of moviebarcode's dependencies): KALMUS's own measures of two barcodes, as JSON.

Usage: python kalmus_measures.py colours.npz  (arrays a, b: (n, 3) uint8, one length < 2000)
"""

import json
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")
from kalmus.utils import measure_utils as mu  # noqa: E402


def codes(text):
    return [int(c) if c.isdigit() else ord(c) - ord("a") + 9 for c in text]


data = np.load(sys.argv[1])
a, b = data["a"], data["b"]
luma = np.array([0.299, 0.587, 0.114])
hue_a = mu.generate_hue_strings_from_color_barcode(a)
hue_b = mu.generate_hue_strings_from_color_barcode(b)
bri_a = mu.generate_brightness_string_from_brightness_barcode((a @ luma)[:, None])
bri_b = mu.generate_brightness_string_from_brightness_barcode((b @ luma)[:, None])
image_a = np.repeat(a[None].astype(np.float64), 7, axis=0)
image_b = np.repeat(b[None].astype(np.float64), 7, axis=0)
print(
    json.dumps(
        {
            "nrmse_similarity": mu.nrmse_similarity(image_a, image_b),
            "hue": [codes(hue_a), codes(hue_b)],
            "brightness": [codes(bri_a), codes(bri_b)],
            "hue_sw": mu.compare_smith_waterman(hue_a, hue_b),
            "brightness_sw": mu.compare_smith_waterman(bri_a, bri_b),
            "hue_nw": mu.compare_needleman_wunsch(hue_a, hue_b),
        }
    )
)
