"""Golden test of batched_kmeans: pinned results on 8 real frames, tied to ALGORITHM_VERSION.

Results cached by the renderer are named by :data:`moviebarcode.kmeans.ALGORITHM_VERSION`,
so any change of results must come with a bump of that version. This test fails when
the results on ``tests/data/kmeans_golden_frames.npz`` differ from those pinned in
``tests/data/kmeans_golden.json``, or when that file was made with another version. After
an intended change of results, bump ``ALGORITHM_VERSION`` (src/moviebarcode/kmeans/config.py),
then regenerate the JSON with::

    python tests/test_kmeans_golden.py --regenerate

The frames (8 consecutive frames of ``bbb_trailer_h264.mp4``, with a cut, downscaled to
64x36) were made with ``--frames-from STORE``, from a store made by
``moviebarcode prep tests/data/bbb_trailer_h264.mp4 --every 2 -o STORE``; they need not
be made again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from moviebarcode.kmeans import ALGORITHM_VERSION, KMeansConfig, batched_kmeans

DATA = Path(__file__).parent / "data"
FRAMES = DATA / "kmeans_golden_frames.npz"
GOLDEN = DATA / "kmeans_golden.json"
RUNS = {  # name: (k, the config's fields)
    "k8_default": (8, {"seed": 1}),
    "k3_alone": (3, {"seed": 2, "neighbours": 0}),
    "k4_exact": (4, {"seed": 3, "coreset": False, "n_init": 2}),
}
REGENERATE = "python tests/test_kmeans_golden.py --regenerate"


def load_frames() -> np.ndarray:
    """The golden frames as pixels, (8, 36 * 64, 3) float32."""
    with np.load(FRAMES) as z:
        frames = z["frames"]
    return frames.reshape(frames.shape[0], -1, 3).astype(np.float32)


def run(name: str, pixels: np.ndarray):
    k, fields = RUNS[name]
    return batched_kmeans(pixels, k, KMeansConfig(**fields))


def test_golden_file_matches_the_algorithm_version():
    golden = json.loads(GOLDEN.read_text())
    assert golden["algorithm_version"] == ALGORITHM_VERSION, (
        f"{GOLDEN.name} was made with ALGORITHM_VERSION {golden['algorithm_version']}, the "
        f"code is at {ALGORITHM_VERSION}: when results change, bump ALGORITHM_VERSION and "
        f"regenerate the golden file ({REGENERATE})"
    )


def test_batched_kmeans_reproduces_the_golden_results():
    golden = json.loads(GOLDEN.read_text())
    pixels = load_frames()
    assert set(golden["runs"]) == set(RUNS)
    for name, want in golden["runs"].items():
        assert want["k"] == RUNS[name][0] and want["config"] == RUNS[name][1], name
        r = run(name, pixels)
        hint = (
            f"run {name!r}: batched_kmeans no longer gives the golden results; if the change "
            f"is intended, bump ALGORITHM_VERSION and regenerate the golden file ({REGENERATE})"
        )
        np.testing.assert_allclose(r.inertia, want["inertia"], rtol=1e-6, err_msg=hint)
        np.testing.assert_allclose(r.centres, want["centres"], rtol=0, atol=1e-3, err_msg=hint)
        np.testing.assert_allclose(r.shares, want["shares"], rtol=0, atol=1e-5, err_msg=hint)


def regenerate() -> None:
    """Write the golden JSON from the golden frames and the code as it is now."""
    pixels = load_frames()
    runs = {}
    for name, (k, fields) in RUNS.items():
        r = run(name, pixels)
        runs[name] = {
            "k": k,
            "config": fields,
            "centres": np.round(r.centres.astype(np.float64), 4).tolist(),
            "shares": np.round(r.shares.astype(np.float64), 6).tolist(),
            "inertia": [float(v) for v in r.inertia],
        }
    golden = {"algorithm_version": ALGORITHM_VERSION, "frames": FRAMES.name, "runs": runs}
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {GOLDEN} (ALGORITHM_VERSION {ALGORITHM_VERSION})")


def make_frames(store: str, first: int = 292, n: int = 8) -> None:
    """Write the golden frames: frames ``first`` to ``first + n`` of a frame store of the
    trailer, area-downscaled to 64x36, as uint8 (n, 36, 64, 3)."""
    import zarr
    from PIL import Image

    frames = zarr.open_group(store, mode="r")["frames"][first : first + n]
    small = [np.asarray(Image.fromarray(f).resize((64, 36), Image.Resampling.BOX)) for f in frames]
    np.savez_compressed(FRAMES, frames=np.stack(small).astype(np.uint8))
    print(f"wrote {FRAMES}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true", help="rewrite the golden JSON")
    parser.add_argument("--frames-from", metavar="STORE", help="rewrite the golden frames")
    args = parser.parse_args()
    if args.frames_from:
        make_frames(args.frames_from)
    if args.regenerate:
        regenerate()
    if not (args.frames_from or args.regenerate):
        parser.print_help()
