"""moviebarcode: turn a film into a movie barcode.

Stage one (``prep``) decodes a film once into a chunked Zarr frame cache; stage two
(``render``) clusters the cached frames and writes the barcode image.
"""

__version__ = "0.1.0"
