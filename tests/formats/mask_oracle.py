"""Golden COCO RLE strings for src/formats/kit/mask.rs, from the real pycocotools and Datumaro.

Run in the Datumaro venv:  python tests/formats/mask_oracle.py > src/formats/kit/testdata/mask_golden.json
Polygons go through pycocotools' frPyObjects (rleFrPoly); boxes and ellipses through Datumaro's
Bbox.as_polygon / Ellipse.as_polygon and then frPyObjects, as Datumaro's polygons_to_masks and
boxes_to_masks do; "dm_polygon" is a polygon through dm.Polygon (float32, rounded to 2 digits).
"""
import json

import datumaro as dm
from pycocotools import mask as mask_utils

H, W = 37, 53


def rle(poly, h, w):
    r = mask_utils.frPyObjects([poly], h, w)[0]
    return r["counts"].decode(), int(mask_utils.area(r)), [float(v) for v in mask_utils.toBbox(r)]


polygons = [
    [1, 1, 10, 1, 10, 8, 1, 8],
    [0.3, 0.7, 20.2, 3.9, 12.6, 30.1],
    [5.5, 5.5, 15.5, 5.5, 15.5, 15.5, 5.5, 15.5],
    [1.09999, 2.30001, 17.69999, 2.30001, 17.69999, 19.10001, 1.09999, 19.10001],
    [4.123456, 2.987654, 33.33333, 9.87654, 21.11111, 29.99999],
    [-5.2, -3.1, 20.4, 2.2, 60.7, 40.3, 3.3, 45.0],
    [10, 10, 30, 10, 30, 30, 20, 15, 10, 30],
    [2.49, 2.51, 2.51, 2.49, 40.1, 33.3],
    [10, 10, 10, 10, 10, 10],
    [0, 0, 53, 0, 53, 37, 0, 37],
    [7.1, 3.2, 44.9, 3.2, 44.9, 3.2],
    [30.25, 2.75, 50.6, 18.0, 38.4, 35.9, 21.1, 33.3, 14.8, 20.2, 22.2, 8.8],
    [-10, -10, -1, -10, -1, -1, -10, -1],
    [52.8, 36.8, 70, 36.9, 70, 50, 52.9, 50],
    [3, 3, 40, 30, 3, 30, 40, 3],
]
boxes = [
    [1, 1, 9, 7],
    [0.5, 0.5, 10, 10],
    [2.3, 4.7, 11.2, 0.4],
    [-3.5, -2.25, 20, 15],
    [40.1, 30.2, 20, 20],
    [5, 5, 0, 0],
    [0, 0, 53, 37],
    [12.4999, 7.5001, 3.0, 3.0],
    [0.3, 0.7, 7.1, 9.9],
    [1.1, 2.3, 16.6, 16.8],
]
ellipses = [  # x1, y1, x2, y2 (Datumaro Ellipse)
    [10, 10, 30, 20],
    [0.4, 3.6, 20.2, 30.9],
    [-5, -5, 15, 12.5],
    [40.3, 20.1, 70.2, 50.5],
    [20, 20, 21, 21],
    [5.5, 5.5, 5.5, 9.5],
    [1.1, 2.3, 17.7, 19.1],
    [0.3, 0.7, 35.9, 36.1],
]
cases = []
for p in polygons:
    c, a, b = rle(p, H, W)
    cases.append({"kind": "polygon", "points": p, "counts": c, "area": a, "bbox": b})
    # Datumaro's Polygon stores float32 coordinates rounded to 2 digits.
    c, a, b = rle(dm.Polygon(p).as_polygon(), H, W)
    cases.append({"kind": "dm_polygon", "points": p, "counts": c, "area": a, "bbox": b})
for x, y, w, h in boxes:
    c, a, b = rle(dm.Bbox(x, y, w, h).as_polygon(), H, W)
    cases.append({"kind": "box", "points": [x, y, w, h], "counts": c, "area": a, "bbox": b})
for e in ellipses:
    c, a, b = rle(dm.Ellipse(*e).as_polygon(), H, W)
    cases.append({"kind": "ellipse", "points": e, "counts": c, "area": a, "bbox": b})
print(json.dumps({"height": H, "width": W, "cases": cases}, indent=1))
